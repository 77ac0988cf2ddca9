"""The dbt CLI resource: dbt from this interpreter's environment, started once per run."""

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

    dagster-dbt 0.29 asks the executable for its version (`dbt --version`: a second dbt start-up,
    seconds on a small machine) on every invocation and has no option to skip it. The executable
    beside `sys.executable` is the dbt-core that dagster-dbt imported, so its version is known."""

    @cached_property
    def _cli_version(self):
        return DBT_PYTHON_VERSION


def dbt_cli(project: DbtProject) -> LocalDbtCliResource:
    return LocalDbtCliResource(project_dir=project, dbt_executable=str(dbt_executable()))
