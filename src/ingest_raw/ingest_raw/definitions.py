"""Code location ingest_raw: one asset per declared source (see ingest_raw.catalog).

Importing this module builds nothing: Dagster calls `defs` once, at load, like every location's."""

import dagster as dg


@dg.definitions
def defs() -> dg.Definitions:
    from ingest_raw.catalog import SOURCES
    from ingest_raw.factory import build_definitions

    return build_definitions(SOURCES.values())
