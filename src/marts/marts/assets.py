"""The dbt models as Dagster assets: one op per partitioning, each a single `dbt build`."""

from collections.abc import Iterator, Mapping, Sequence

import dagster as dg
from dagster_dbt import DbtProject, dbt_assets

from marts.dbt_cli import LocalDbtCliResource
from marts.metadata import table_metadata
from marts.project import invocation_target
from marts.translator import MONTHLY_TAG, FlightsTranslator
from shared.partitions import FLIGHTS_MONTHLY
from shared.resources import PostgresWarehouse

#: The window of flight dates [start, end) that monthly models rebuild (fct_flights reads them with
#: env_var()). An environment variable, not a dbt --var: changed vars make dbt re-parse everything.
WINDOW_ENV = ("MARTS_WINDOW_START", "MARTS_WINDOW_END")


def build_dbt_assets(project: DbtProject) -> list[dg.AssetsDefinition]:
    translator = FlightsTranslator()
    # No `project=`: dagster-dbt would put the DbtProject object itself on every asset as metadata
    # ("[DbtProject] (unserializable)" in the UI); it only needs it for code references, unused here.
    common = {"manifest": project.manifest_path, "dagster_dbt_translator": translator}

    @dbt_assets(select=f"tag:{MONTHLY_TAG}", partitions_def=FLIGHTS_MONTHLY, name="flights_monthly", **common)
    def flights_monthly(
        context: dg.AssetExecutionContext, dbt: LocalDbtCliResource, warehouse: PostgresWarehouse
    ):
        """Monthly models (fct_flights): one month rebuilds that month only (a backfill range rebuilds
        its months in one run)."""
        window = context.partition_time_window
        env = dict(
            zip(WINDOW_ENV, (window.start.date().isoformat(), window.end.date().isoformat()), strict=True)
        )
        yield from _build(context, project, dbt, warehouse, ["build"], env)

    @dbt_assets(exclude=f"tag:{MONTHLY_TAG}", name="flights_models", **common)
    def flights_models(
        context: dg.AssetExecutionContext, dbt: LocalDbtCliResource, warehouse: PostgresWarehouse
    ):
        """Every other model: staging views, dimensions and marts over the whole year."""
        yield from _build(context, project, dbt, warehouse, ["build"], {})

    return [flights_monthly, flights_models]


def _build(
    context: dg.AssetExecutionContext,
    project: DbtProject,
    dbt: LocalDbtCliResource,
    warehouse: PostgresWarehouse,
    args: Sequence[str],
    env: Mapping[str, str],
) -> Iterator:
    """Stream dbt's events; each model gets its columns' types (and a table its row count, a mart its
    preview). dbt's target folder for this invocation lives outside the package (see marts.project)."""
    with (
        invocation_target(project, context.op_execution_context.op.name) as target,
        warehouse.connect(autocommit=True) as conn,
    ):
        invocation = dbt.cli_with_env(list(args), env, context=context, target_path=target)
        for event in invocation.stream():
            if isinstance(event, dg.Output):
                key = context.asset_key_for_output(event.output_name)
                declared = context.assets_def.specs_by_key[key].metadata.get("dagster/column_schema")
                event = event.with_metadata({**event.metadata, **table_metadata(conn, *key.path, declared)})
            yield event
