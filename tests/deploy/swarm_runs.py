"""The README's main job on a deployed Swarm stack, followed node by node: which node ran each run's
task, and optionally a worker drained while a run executes there. Used by tests/deploy/test_swarm.py
and bench/swarm_nodes.py."""

from __future__ import annotations

import json
import time
from collections import Counter
from dataclasses import dataclass, field

from devtools.asset_runs import TERMINAL_STATUSES, run_statuses
from devtools.webserver import graphql
from tests.deploy.docker_stack import SwarmStack, docker, run_services, worker_nodes
from tests.main_job import RAW_GROUP, is_done, launch_raw_backfill, materializable_assets

RUN_TAGS_QUERY = """
{ runsOrError { ... on Runs { results {
    runId status tags { key value } repositoryOrigin { repositoryLocationName } } } } }
"""
MATERIALIZATIONS_QUERY = """
query Materializations($path: [String!]!) {
  assetOrError(assetKey: {path: $path}) {
    ... on Asset { assetMaterializations(limit: 1000) {
      partition
      metadataEntries { label ... on IntMetadataEntry { intValue } ... on TextMetadataEntry { text }
        ... on JsonMetadataEntry { jsonString } }
    } }
  }
}
"""


@dataclass
class MainJob:
    seconds: float = 0.0
    statuses: dict[str, str] = field(default_factory=dict)  # run id -> final status
    parents: dict[str, str] = field(default_factory=dict)  # retried run id -> the run it retries
    locations: dict[str, str] = field(default_factory=dict)  # run id -> its code location
    nodes: dict[str, set[str]] = field(default_factory=dict)  # run id -> hostnames its tasks ran on
    secrets: dict[str, set[str]] = field(default_factory=dict)  # run id -> Swarm secrets of its service
    resources: dict[str, dict] = field(default_factory=dict)  # run id -> its service's Resources
    drained: str | None = None  # the worker drained mid-job
    drained_run: str | None = None  # the run whose task ran there when it was drained
    drain_to_done: float | None = None  # seconds from the drain to every asset materialized

    def runs_per_node(self) -> Counter:
        return Counter(node for nodes in self.nodes.values() for node in nodes)

    def succeeded_in_the_end(self, run_id: str) -> bool:
        """The run succeeded, or a retry of it did (run_retries starts a new run for a crashed one)."""
        if self.statuses[run_id] == "SUCCESS":
            return True
        retries = [child for child, parent in self.parents.items() if parent == run_id]
        return any(self.succeeded_in_the_end(child) for child in retries)


def task_nodes(service: str) -> set[str]:
    """Hostnames of the nodes the service's tasks were placed on."""
    listed = docker("service", "ps", "--format", "{{.Node}}", service, check=False).stdout.split()
    return set(listed)


def task_template(service: str) -> dict:
    """The service's TaskTemplate ({} once it is gone)."""
    spec = docker("service", "inspect", "--format", "{{json .Spec.TaskTemplate}}", service, check=False)
    return json.loads(spec.stdout.strip() or "null") or {}


def running_on(service: str) -> str | None:
    listed = docker(
        "service", "ps", "--filter", "desired-state=running", "--format", "{{.Node}} {{.CurrentState}}",
        service, check=False,
    ).stdout.split()  # fmt: skip
    return listed[0] if len(listed) >= 2 and listed[1] == "Running" else None


def run_main_job(stack: SwarmStack, drain_a_worker: bool = False, timeout: float = 1500) -> MainJob:
    """Click "Materialize all" on the raw group (the UI's backfill of every partition) and wait until
    every asset of every location is materialized by the automation and no run is left; with
    `drain_a_worker`, the first worker seen running a run's task is drained (given back afterwards)."""
    job = MainJob()
    nodes = materializable_assets(stack.url)
    raw = [node["assetKey"]["path"] for node in nodes if node["groupName"] == RAW_GROUP]
    started = time.monotonic()
    launch_raw_backfill(stack.url, raw)
    deadline = started + timeout
    workers = worker_nodes()
    drained_at = None
    try:
        while True:
            for run_id, service in run_services(stack.network).items():
                job.nodes.setdefault(run_id, set()).update(task_nodes(service))
                if run_id not in job.secrets and (template := task_template(service)):
                    secrets = template["ContainerSpec"].get("Secrets", [])
                    job.secrets[run_id] = {secret["SecretName"] for secret in secrets}
                    job.resources[run_id] = template.get("Resources", {})
                node = running_on(service)
                if drain_a_worker and job.drained is None and node in workers:
                    docker("node", "update", "--availability", "drain", node)
                    job.drained, job.drained_run, drained_at = node, run_id, time.monotonic()
            statuses = run_statuses(stack.url)
            if (
                all(is_done(node) for node in materializable_assets(stack.url))
                and set(statuses.values()) <= TERMINAL_STATUSES
            ):
                break
            if time.monotonic() > deadline:
                missing = [n["assetKey"]["path"] for n in materializable_assets(stack.url) if not is_done(n)]
                raise AssertionError(f"main job not done in {timeout:.0f} s: {missing}, runs {statuses}")
            time.sleep(1)
    finally:
        if job.drained:
            docker("node", "update", "--availability", "active", job.drained)
    done = time.monotonic()
    job.seconds = done - started
    job.drain_to_done = done - drained_at if drained_at else None
    for run in graphql(stack.url, RUN_TAGS_QUERY, timeout=30)["runsOrError"]["results"]:
        job.statuses[run["runId"]] = run["status"]
        job.locations[run["runId"]] = run["repositoryOrigin"]["repositoryLocationName"]
        tags = {tag["key"]: tag["value"] for tag in run["tags"]}
        if "dagster/parent_run_id" in tags:
            job.parents[run["runId"]] = tags["dagster/parent_run_id"]
    return job


def loaded_rows(stack: SwarmStack, path: list[str]) -> tuple[str, int]:
    """An asset's table and the rows its latest load of each partition reported (rows_loaded, or a
    partition's share of a range load: partition_rows)."""
    asset = graphql(stack.url, MATERIALIZATIONS_QUERY, {"path": path}, timeout=30)["assetOrError"]
    latest: dict[str | None, dict] = {}
    for materialization in asset["assetMaterializations"]:  # newest first
        entries = {
            e["label"]: e.get("intValue", e.get("text", e.get("jsonString")))
            for e in materialization["metadataEntries"]
        }
        latest.setdefault(materialization["partition"], entries)
    (table,) = {entries["dagster/table_name"] for entries in latest.values()}
    rows = [
        json.loads(entries["partition_rows"])[partition] if partition else entries["rows_loaded"]
        for partition, entries in latest.items()
    ]
    return table, sum(rows)
