"""The dbt CLI resource: dbt from this interpreter's environment, with no work beside the dbt process."""

import sys
from functools import cached_property
from pathlib import Path

from dagster_dbt import DbtCliResource, DbtProject
from dagster_dbt.compat import DBT_PYTHON_VERSION


def dbt_executable() -> Path:
    """`dbt` beside the running interpreter: a venv that is not activated has no dbt on PATH."""
    return Path(sys.executable).parent / "dbt"


class LocalDbtCliResource(DbtCliResource):
    """A DbtCliResource whose dbt is the dbt-core installed with this interpreter.

    dagster-dbt 0.29 spends seconds per invocation on two things it has no option to skip:
    - `dbt --version` in a subprocess (a second dbt start-up). The executable beside
      `sys.executable` is the dbt-core dagster-dbt imported, so its version is already known.
    - an in-process dbt adapter, used only by `fetch_row_counts` / `fetch_column_metadata`, which
      read relation names baked into the manifest at build time (a placeholder database in images).
      `marts.metadata` counts rows over the warehouse connection instead."""

    @cached_property
    def _cli_version(self):
        return DBT_PYTHON_VERSION

    def _initialize_dbt_core_adapter(self, args):
        return None


def dbt_cli(project: DbtProject) -> LocalDbtCliResource:
    return LocalDbtCliResource(project_dir=project, dbt_executable=str(dbt_executable()))
