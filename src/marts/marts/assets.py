"""The dbt models as Dagster assets: one op per partitioning, each a single `dbt build`."""

import json
from collections.abc import Iterator, Sequence

import dagster as dg
from dagster_dbt import DbtCliResource, DbtProject, dbt_assets

from marts.metadata import table_metadata
from marts.translator import MONTHLY_TAG, FlightsTranslator
from shared.partitions import FLIGHTS_MONTHLY
from shared.resources import PostgresWarehouse


def build_dbt_assets(project: DbtProject) -> list[dg.AssetsDefinition]:
    translator = FlightsTranslator()
    common = {"manifest": project.manifest_path, "project": project, "dagster_dbt_translator": translator}

    @dbt_assets(select=f"tag:{MONTHLY_TAG}", partitions_def=FLIGHTS_MONTHLY, name="flights_monthly", **common)
    def flights_monthly(context: dg.AssetExecutionContext, dbt: DbtCliResource, warehouse: PostgresWarehouse):
        """Monthly models (stg_flights, fct_flights): the run's partition window goes to dbt as vars,
        so one month rebuilds that month only (a backfill range rebuilds its months in one run)."""
        window = context.partition_time_window
        dbt_vars = {"min_date": window.start.date().isoformat(), "max_date": window.end.date().isoformat()}
        yield from _build(context, dbt, warehouse, ["build", "--vars", json.dumps(dbt_vars)])

    @dbt_assets(exclude=f"tag:{MONTHLY_TAG}", name="flights_models", **common)
    def flights_models(context: dg.AssetExecutionContext, dbt: DbtCliResource, warehouse: PostgresWarehouse):
        """Every other model: staging views, dimensions and marts over the whole year."""
        yield from _build(context, dbt, warehouse, ["build"])

    return [flights_monthly, flights_models]


def _build(
    context: dg.AssetExecutionContext, dbt: DbtCliResource, warehouse: PostgresWarehouse, args: Sequence[str]
) -> Iterator:
    """Stream dbt's events; each materialized table gets its row count (and a mart its preview)."""
    with warehouse.connect(autocommit=True) as conn:
        for event in dbt.cli(list(args), context=context).stream():
            if isinstance(event, dg.Output):
                schema, name = context.asset_key_for_output(event.output_name).path
                event = event.with_metadata({**event.metadata, **table_metadata(conn, schema, name)})
            yield event
