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
#: A session-level advisory lock per dbt op, held while it builds (released with the connection).
BUILD_LOCK_PREFIX = "marts dbt build: "
BUILD_LOCK_TRY = "select pg_try_advisory_lock(hashtext(%s))"
BUILD_LOCK = "select pg_advisory_lock(hashtext(%s))"


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
    preview). dbt's target folder for this invocation lives outside the package (see marts.project).

    Two runs building the same models (a run launched by hand while the automation builds them)
    take turns instead of failing with `relation ... already exists`: each build holds a Postgres
    advisory lock named after its op on the warehouse for its duration. The lock lives where the
    models do, so it holds in every deployment mode and whatever the instance's pool limits."""
    op_name = context.op_execution_context.op.name
    with warehouse.connect(autocommit=True) as conn:
        if not conn.execute(BUILD_LOCK_TRY, (BUILD_LOCK_PREFIX + op_name,)).fetchone()[0]:
            context.log.info(f"another run is building the models of {op_name}: waiting for it to finish")
            conn.execute(BUILD_LOCK, (BUILD_LOCK_PREFIX + op_name,))
        with invocation_target(project, op_name) as target:
            yield from _stream(context, dbt, conn, args, env, target)


def _stream(context, dbt, conn, args: Sequence[str], env: Mapping[str, str], target) -> Iterator:
    invocation = dbt.cli_with_env(list(args), env, context=context, target_path=target)
    for event in invocation.stream():
        if isinstance(event, dg.Output):
            key = context.asset_key_for_output(event.output_name)
            declared = context.assets_def.specs_by_key[key].metadata.get("dagster/column_schema")
            event = event.with_metadata({**event.metadata, **table_metadata(conn, *key.path, declared)})
        yield event
