"""Turn source declarations into Dagster assets, checks and schedules."""

import json
from collections.abc import Iterable, Iterator
from contextlib import contextmanager

import dagster as dg

from ingest_raw.checks import declared_checks
from ingest_raw.declarations import SCHEMA, MonthlyPartition, RunResources, Source
from ingest_raw.launcher import run_source_program
from shared.resources import PostgresWarehouse

#: Concurrency pool shared by every source: caps simultaneous loads into the warehouse.
WAREHOUSE_POOL = "warehouse"
#: The tag dagster-k8s reads a run pod's (K8sRunLauncher: run tags) or step pod's (k8s_job_executor:
#: op tags) container settings from.
K8S_CONFIG_TAG = "dagster-k8s/config"


def asset_key(source: Source) -> dg.AssetKey:
    return dg.AssetKey([SCHEMA, source.table])


def partitions_def(partition: MonthlyPartition | None) -> dg.PartitionsDefinition | None:
    if partition is None:
        return None
    return dg.MonthlyPartitionsDefinition(start_date=partition.start, end_date=partition.end)


def k8s_tags(resources: RunResources | None) -> dict[str, str]:
    """The `dagster-k8s/config` tag asking for a source's run resources; none for the defaults."""
    if resources is None:
        return {}
    requests = {"cpu": resources.cpu_request, "memory": resources.memory_request}
    limits = {"cpu": resources.cpu_limit, "memory": resources.memory_limit}
    config = {"container_config": {"resources": {"requests": requests, "limits": limits}}}
    return {K8S_CONFIG_TAG: json.dumps(config)}


def retry_policy(max_retries: int, delay_seconds: float) -> dg.RetryPolicy:
    """The waits between a load's attempts. A step asks for a retry itself (`retried`): a step with a
    `retry_policy` is also retried when its run is terminated (Dagster turns the interrupt into a
    retry request), and a terminated load must stay stopped."""
    return dg.RetryPolicy(
        max_retries=max_retries,
        delay=delay_seconds,
        backoff=dg.Backoff.EXPONENTIAL,
        jitter=dg.Jitter.PLUS_MINUS,
    )


def source_asset(
    source: Source, *, max_retries: int = 3, retry_delay_seconds: float = 10.0, pool: str = WAREHOUSE_POOL
) -> dg.AssetsDefinition:
    key = asset_key(source)
    policy = retry_policy(max_retries, retry_delay_seconds)
    columns = dg.TableSchema(
        columns=[
            dg.TableColumn(
                column.name,
                column.type,
                description=column.description or None,
                constraints=dg.TableColumnConstraints(nullable=column.name not in source.primary_key),
            )
            for column in source.columns
        ]
    )

    @dg.asset(
        key=key,
        group_name=SCHEMA,
        kinds={source.program.kind if source.program else "python", "postgres"},
        owners=list(source.owners),
        description=source.description or f"Source {source.name} loaded into {SCHEMA}.{source.table}.",
        metadata={
            "input": source.input,
            "primary_key": ", ".join(source.primary_key) or "none",
            "dagster/table_name": f"{SCHEMA}.{source.table}",
            "dagster/column_schema": columns,
        },
        partitions_def=partitions_def(source.partition),
        # A backfill of many partitions is one run: the program reads the input once for all of them.
        backfill_policy=dg.BackfillPolicy.single_run() if source.partition else None,
        pool=pool,
        op_tags=k8s_tags(source.run_resources),
        freshness_policy=source.freshness.policy(f"source {source.name!r}") if source.freshness else None,
        check_specs=[
            dg.AssetCheckSpec(check.name, asset=key, description=check.description, blocking=check.blocking)
            for check in declared_checks(source)
        ],
    )
    def load_source(context: dg.AssetExecutionContext, warehouse: PostgresWarehouse):
        with retried(context, policy):
            yield from run_source_program(context, source, warehouse.child_env())

    return load_source


@contextmanager
def retried(context: dg.AssetExecutionContext, policy: dg.RetryPolicy) -> Iterator[None]:
    """A failure a retry may mend (a transient exit, a crash) asks for another attempt after the
    policy's wait, while attempts are left; the last attempt fails with the program's own error."""
    try:
        yield
    except dg.Failure as failure:
        if not failure.allow_retries or context.retry_number >= policy.max_retries:
            raise
        wait = policy.calculate_delay(context.retry_number + 1)
        raise dg.RetryRequested(max_retries=policy.max_retries, seconds_to_wait=wait) from failure


def source_schedule(source: Source, asset: dg.AssetsDefinition) -> dg.ScheduleDefinition:
    """Refresh on the declared cron; a partitioned source refreshes its latest partition. Stopped by
    default: turn it on in the UI (or deploy with it on) where the data should stay fresh."""

    @dg.schedule(
        cron_schedule=source.cron_schedule,
        name=f"refresh_{SCHEMA}_{source.table}",
        target=asset,
        default_status=dg.DefaultScheduleStatus.STOPPED,
        description=f"Keeps {SCHEMA}.{source.table} fresh.",
    )
    def refresh(context: dg.ScheduleEvaluationContext):
        tags = k8s_tags(source.run_resources)
        if asset.partitions_def is None:
            return dg.RunRequest(tags=tags)
        return dg.RunRequest(partition_key=asset.partitions_def.get_last_partition_key(), tags=tags)

    return refresh


def build_definitions(sources: Iterable[Source], **asset_options) -> dg.Definitions:
    assets, schedules = [], []
    for source in sources:
        asset = source_asset(source, **asset_options)
        assets.append(asset)
        if source.cron_schedule:
            schedules.append(source_schedule(source, asset))
    return dg.Definitions(
        assets=assets,
        schedules=schedules,
        resources={"warehouse": PostgresWarehouse()},
        # Each load is a process of its own already (a fork of the step's, `ingest_raw.launcher`): a
        # step process of its own would add a Python start per source. The warehouse pool allows one
        # load at a time in production.
        executor=dg.in_process_executor,
    )
