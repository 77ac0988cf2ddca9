"""Code location `marts`. Importing this module parses nothing: Dagster calls `defs` once, at load."""

import dagster as dg


@dg.definitions
def defs() -> dg.Definitions:
    from marts.build import build_definitions
    from marts.project import flights_project

    # Parses the dbt project only if its inputs changed since the last parse (see marts.project).
    return build_definitions(flights_project())


def prepare_runs() -> None:
    """Called once in the code server's forkserver (`shared.code_server`): runs forked from it start
    their dbt invocations as forks of a process that has dbt imported and the project parsed."""
    from marts.dbt_fork import prepare
    from marts.project import flights_project

    prepare(flights_project())
