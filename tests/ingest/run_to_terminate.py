"""A real Dagster run of the weather source with the multiprocess executor, for the termination test:
`python run_to_terminate.py` with DAGSTER_HOME, WAREHOUSE_* and WEATHER_LOCATION set."""

import os
from dataclasses import replace

import dagster as dg

from ingest_raw.catalog import SOURCES
from ingest_raw.factory import source_asset
from shared.resources import PostgresWarehouse


def weather_job() -> dg.JobDefinition:
    asset = source_asset(replace(SOURCES["weather"], input=os.environ["WEATHER_LOCATION"]))
    defs = dg.Definitions(
        assets=[asset],
        jobs=[dg.define_asset_job("load_weather", selection=[asset.key])],
        resources={"warehouse": PostgresWarehouse()},
    )
    return defs.resolve_job_def("load_weather")


if __name__ == "__main__":
    with dg.DagsterInstance.get() as instance:
        dg.execute_job(dg.reconstructable(weather_job), instance=instance)
