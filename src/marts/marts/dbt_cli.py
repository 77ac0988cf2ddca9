"""The dbt CLI resource: dbt from this interpreter's environment, with no work beside the dbt process."""

import contextlib
import os
import sys
from collections.abc import Iterator, Mapping
from functools import cached_property
from pathlib import Path

from dagster_dbt import DbtCliResource, DbtProject
from dagster_dbt.compat import DBT_PYTHON_VERSION
from dagster_dbt.core.dbt_cli_invocation import DbtCliInvocation

from marts.dbt_fork import forking

#: dbt's messages reach the UI as plain text: no ANSI colour codes.
GLOBAL_FLAGS = ["--no-use-colors"]


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

    def cli_with_env(self, args: list[str], env: Mapping[str, str], **kwargs) -> DbtCliInvocation:
        """`cli` with extra variables in the dbt process's environment, and that process a fork of
        this one where it can be (`marts.dbt_fork`). dagster-dbt copies `os.environ` when it starts
        dbt and takes no environment of its own; runs here execute one op in-process, so nothing else
        reads the environment meanwhile."""
        with _environ(env), forking(Path(self.project_dir)):
            return self.cli(args, **kwargs)


@contextlib.contextmanager
def _environ(env: Mapping[str, str]) -> Iterator[None]:
    saved = {name: os.environ.get(name) for name in env}
    os.environ.update(env)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def dbt_cli(project: DbtProject) -> LocalDbtCliResource:
    return LocalDbtCliResource(
        project_dir=project, dbt_executable=str(dbt_executable()), global_config_flags=GLOBAL_FLAGS
    )
