"""Code location ingest_raw: one asset per declared source (see ingest_raw.catalog).

Importing this module builds nothing: Dagster calls `defs` once, at load, like every location's."""

import dagster as dg


@dg.definitions
def defs() -> dg.Definitions:
    from ingest_raw.catalog import SOURCES
    from ingest_raw.factory import build_definitions

    return build_definitions(SOURCES.values())


def prepare_runs() -> None:
    """Called once in the code server's forkserver (`shared.code_server`): runs forked from it start
    each load as a fork of a process that has the loader imported."""
    from ingest_raw.launcher import prepare

    prepare()
