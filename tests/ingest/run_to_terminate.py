"""A real Dagster run of one source with the multiprocess executor, for the termination tests:
`python run_to_terminate.py` with DAGSTER_HOME, WAREHOUSE_*, SOURCE (a catalog name) and SOURCE_INPUT set."""

import os
from dataclasses import replace

import dagster as dg

from ingest_raw.catalog import SOURCES
from ingest_raw.factory import source_asset
from shared.resources import PostgresWarehouse


def load_job() -> dg.JobDefinition:
    asset = source_asset(replace(SOURCES[os.environ["SOURCE"]], input=os.environ["SOURCE_INPUT"]))
    defs = dg.Definitions(
        assets=[asset],
        jobs=[dg.define_asset_job("load", selection=[asset.key])],
        resources={"warehouse": PostgresWarehouse()},
    )
    return defs.resolve_job_def("load")


if __name__ == "__main__":
    with dg.DagsterInstance.get() as instance:
        dg.execute_job(dg.reconstructable(load_job), instance=instance)
