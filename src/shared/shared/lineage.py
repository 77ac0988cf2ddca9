"""Lineage that leaves Dagster: the OpenLineage events of every finished run (docs/alerts.md).

Off unless OPENLINEAGE_URL is set (with the `openlineage-python` client's own settings:
OPENLINEAGE_API_KEY, OPENLINEAGE_CONFIG, ...). The alerts watcher sends them, because it alone sees
the runs of every location and the asset graph across them; a sensor runs inside one location.
`dagster-openlineage` was evaluated: it names datasets by asset key and sends no inputs, so a catalog
would see no edge between raw, staging and marts; `openlineage-dagster` pins Dagster <= 1.6.

Per finished run: a START and a COMPLETE or FAIL event of the run itself (job `<location>.<job>`),
and one event per asset it materialized (COMPLETE) or failed to (FAIL), job `<location>.<asset>`, the
run as its parent, reading the tables of the asset's upstream assets and writing its own. Datasets
are the warehouse tables (an asset's `dagster/table_name`) as OpenLineage names Postgres ones:
namespace `postgres://host:port`, name `database.schema.table`. Events are deterministic, so one
sent again after a failure is the same event.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import urlsplit

import dagster as dg
from dagster._core.events import DagsterEventType
from openlineage.client import OpenLineageClient
from openlineage.client.event_v2 import InputDataset, Job, OutputDataset, Run, RunEvent, RunState
from openlineage.client.facet_v2 import error_message_run, job_type_job, parent_run
from openlineage.client.naming.dataset import Postgres

from shared.postgres import WarehouseSettings

PRODUCER = f"https://github.com/dagster-io/dagster/tree/{dg.__version__}#shared.lineage"
TABLE_NAME = "dagster/table_name"
#: The webserver's asset graph, every location's assets merged.
ASSET_GRAPH_QUERY = """{ assetNodes { assetKey { path } dependencyKeys { path }
  metadataEntries { label ... on TextMetadataEntry { text } } } }"""


@dataclass(frozen=True)
class Asset:
    table: str | None
    deps: frozenset[str]


def asset_graph(data: Mapping) -> dict[str, Asset]:
    """Asset key -> its table and upstream keys, from ASSET_GRAPH_QUERY's answer; an asset that two
    locations show (defined in one, a dependency in the other) is merged."""
    graph: dict[str, Asset] = {}
    for node in data["assetNodes"]:
        key = "/".join(node["assetKey"]["path"])
        table = next((e.get("text") for e in node["metadataEntries"] if e["label"] == TABLE_NAME), None)
        deps = frozenset("/".join(dep["path"]) for dep in node["dependencyKeys"])
        known = graph.get(key, Asset(None, frozenset()))
        graph[key] = Asset(known.table or table, known.deps | deps)
    return graph


@dataclass(frozen=True)
class Warehouse:
    """The warehouse as a catalog knows it (the name other tools' lineage uses for it)."""

    host: str
    port: int
    database: str

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Warehouse:
        env = os.environ if env is None else env
        url = env.get("OPENLINEAGE_WAREHOUSE_URL")
        if url:
            parts = urlsplit(url)
            database = parts.path.strip("/")
            if parts.scheme not in ("postgres", "postgresql") or not parts.hostname or not database:
                raise ValueError(
                    f"OPENLINEAGE_WAREHOUSE_URL must look like postgres://host:port/database, not {url!r}"
                )
            return cls(parts.hostname, parts.port or 5432, database)
        if WarehouseSettings.is_configured(env):
            settings = WarehouseSettings.from_env(env)
            host = "localhost" if settings.host.startswith("/") else settings.host  # a socket directory
            return cls(host, settings.port, settings.dbname)
        raise ValueError(
            "OPENLINEAGE_URL is set, but not which warehouse the datasets are in: set"
            " OPENLINEAGE_WAREHOUSE_URL=postgres://host:port/database (the address a catalog knows it by)"
        )

    def dataset(self, table: str, kind: type[InputDataset] | type[OutputDataset]):
        schema, _, name = table.rpartition(".")
        naming = Postgres(
            host=self.host, port=str(self.port), database=self.database, schema=schema or "public", table=name
        )
        return kind(namespace=naming.get_namespace(), name=naming.get_name())


def _time(timestamp: float) -> str:
    return datetime.fromtimestamp(timestamp, UTC).isoformat()


class Lineage:
    def __init__(self, client: OpenLineageClient, warehouse: Warehouse, namespace: str, host: str | None):
        self.client = client
        self.warehouse = warehouse
        self.namespace = namespace
        #: The endpoint's host: what log lines name (its URL may carry a token).
        self.host = host

    @classmethod
    def from_env(cls) -> Lineage | None:
        """None unless OPENLINEAGE_URL is set; raises ValueError naming a missing or wrong setting."""
        url = os.environ.get("OPENLINEAGE_URL")
        if not url:
            return None
        namespace = os.environ.get("OPENLINEAGE_NAMESPACE") or "dagster"
        return cls(OpenLineageClient(), Warehouse.from_env(), namespace, urlsplit(url).hostname)

    def events(
        self,
        instance: dg.DagsterInstance,
        record,
        location: str,
        planned: list[str],
        graph: Mapping[str, Asset],
        error: str | None,
    ) -> list[RunEvent]:
        """The events of a finished run (a RunRecord) of `location`, which was to materialize
        `planned`; `error` is the first error line of a failed one."""
        run = record.dagster_run
        started = record.start_time or record.create_timestamp.timestamp()
        ended = record.end_time or record.update_timestamp.timestamp()
        job = self._job(f"{location}.{run.job_name}", "JOB")
        parent = parent_run.ParentRunFacet(
            run=parent_run.Run(runId=run.run_id), job=parent_run.Job(namespace=self.namespace, name=job.name)
        )
        built = {
            event.dagster_event.asset_key.to_user_string(): event.timestamp
            for event in instance.all_logs(run.run_id, of_type=DagsterEventType.ASSET_MATERIALIZATION)
        }
        events = [
            RunEvent(
                eventType=RunState.START,
                eventTime=_time(started),
                run=Run(runId=run.run_id),
                job=job,
                producer=PRODUCER,
            )
        ]
        for key in sorted(built.keys() | (set(planned) if error is not None else set())):
            asset = graph.get(key)
            if asset is None or asset.table is None:
                continue  # not a warehouse table: nothing a catalog could name
            inputs = [
                self.warehouse.dataset(table, InputDataset)
                for table in sorted({graph[dep].table for dep in asset.deps if dep in graph} - {None})
            ]
            events.append(
                RunEvent(
                    eventType=RunState.COMPLETE if key in built else RunState.FAIL,
                    eventTime=_time(built.get(key, ended)),
                    run=Run(runId=str(uuid.uuid5(uuid.UUID(run.run_id), key)), facets={"parent": parent}),
                    job=self._job(f"{location}.{key}", "ASSET"),
                    inputs=inputs,
                    outputs=[self.warehouse.dataset(asset.table, OutputDataset)],
                    producer=PRODUCER,
                )
            )
        facets = {}
        if error is not None:
            facets["errorMessage"] = error_message_run.ErrorMessageRunFacet(
                message=error, programmingLanguage="python"
            )
        events.append(
            RunEvent(
                eventType=RunState.FAIL if error is not None else RunState.COMPLETE,
                eventTime=_time(ended),
                run=Run(runId=run.run_id, facets=facets),
                job=job,
                producer=PRODUCER,
            )
        )
        return events

    def _job(self, name: str, kind: str) -> Job:
        facet = job_type_job.JobTypeJobFacet(processingType="BATCH", integration="DAGSTER", jobType=kind)
        return Job(namespace=self.namespace, name=name, facets={"jobType": facet})
