"""A real Dagster run of one source with the location's own executor, for the termination tests:
`python run_to_terminate.py` with DAGSTER_HOME, WAREHOUSE_*, SOURCE (a catalog name) and SOURCE_INPUT set."""

import os
from dataclasses import replace

import dagster as dg

from ingest_raw.catalog import SOURCES
from ingest_raw.factory import build_definitions


def load_job() -> dg.JobDefinition:
    source = replace(SOURCES[os.environ["SOURCE"]], input=os.environ["SOURCE_INPUT"])
    defs = dg.Definitions.merge(
        build_definitions([source]), dg.Definitions(jobs=[dg.define_asset_job("load")])
    )
    return defs.resolve_job_def("load")


if __name__ == "__main__":
    with dg.DagsterInstance.get() as instance:
        dg.execute_job(dg.reconstructable(load_job), instance=instance)
