"""Launch asset runs through a Dagster webserver's GraphQL API and follow them to the end."""

from __future__ import annotations

import time
from dataclasses import dataclass

from devtools.webserver import graphql

REPOSITORY = "__repository__"
ASSET_JOB = "__ASSET_JOB"
PARTITION_TAG = "dagster/partition"
RANGE_TAGS = ("dagster/asset_partition_range_start", "dagster/asset_partition_range_end")
TERMINAL_STATUSES = {"SUCCESS", "FAILURE", "CANCELED"}

ASSETS_QUERY = """
query Assets($location: String!) {
  repositoryOrError(
    repositorySelector: {repositoryLocationName: $location, repositoryName: "__repository__"}
  ) {
    __typename
    ... on Repository {
      assetNodes { assetKey { path } isPartitioned isMaterializable dependencyKeys { path } }
    }
    ... on PythonError { message }
    ... on RepositoryNotFoundError { message }
  }
}
"""

RUN_QUERY = """
query Run($runId: ID!) {
  runOrError(runId: $runId) {
    __typename
    ... on Run { status startTime endTime }
    ... on PythonError { message }
  }
}
"""

RUN_FAILURES_QUERY = """
query RunFailures($runId: ID!) {
  logsForRun(runId: $runId) {
    __typename
    ... on EventConnection {
      events {
        __typename
        ... on ExecutionStepFailureEvent { stepKey error { message } }
        ... on RunFailureEvent { message }
        ... on EngineEvent { message error { message } }
      }
    }
  }
}
"""

LOGS_CAPTURED_QUERY = """
query Logs($runId: ID!) {
  logsForRun(runId: $runId) { ... on EventConnection { events { ... on LogsCapturedEvent { fileKey } } } }
}
"""
CAPTURED_LOGS_QUERY = """
query Captured($logKey: [String!]!, $cursor: String, $limit: Int) {
  capturedLogs(logKey: $logKey, cursor: $cursor, limit: $limit) { stdout stderr cursor }
  capturedLogsMetadata(logKey: $logKey) { stdoutLocation stdoutDownloadUrl }
}
"""

LAUNCH_MUTATION = """
mutation Launch($params: ExecutionParams!) {
  launchRun(executionParams: $params) {
    __typename
    ... on LaunchRunSuccess { run { runId } }
    ... on PythonError { message }
    ... on InvalidSubsetError { message }
    ... on RunConfigValidationInvalid { errors { message } }
    ... on Error { message }
  }
}
"""

TERMINATE_MUTATION = """
mutation Terminate($runId: String!) {
  terminateRun(runId: $runId) {
    __typename
    ... on TerminateRunFailure { message }
    ... on PythonError { message }
  }
}
"""

RELOAD_MUTATION = """
mutation Reload($location: String!) {
  reloadRepositoryLocation(repositoryLocationName: $location) {
    __typename
    ... on WorkspaceLocationEntry {
      loadStatus
      locationOrLoadError { __typename ... on PythonError { message } }
    }
    ... on Error { message }
  }
}
"""


SENSORS_QUERY = """
query Sensors($location: String!) {
  repositoryOrError(
    repositorySelector: {repositoryLocationName: $location, repositoryName: "__repository__"}
  ) {
    __typename
    ... on Repository { sensors { id name sensorState { status } } }
    ... on PythonError { message }
  }
}
"""

STOP_SENSOR_MUTATION = """
mutation Stop($id: String!) {
  stopSensor(id: $id) { __typename ... on Error { message } }
}
"""

RESET_SENSOR_MUTATION = """
mutation Reset($selector: SensorSelector!) {
  resetSensor(sensorSelector: $selector) { __typename ... on Error { message } }
}
"""


RUNS_QUERY = """
{ runsOrError { __typename ... on Runs { results { runId status } } ... on PythonError { message } } }
"""


class RunError(RuntimeError):
    pass


@dataclass
class RunResult:
    location: str
    run_id: str
    status: str
    launch_to_end_seconds: float
    partition: str | None


def asset_nodes(url: str, location: str) -> list[dict]:
    """The materializable assets of `location`: key path, isPartitioned, dependencyKeys."""
    repository = graphql(url, ASSETS_QUERY, {"location": location}, timeout=30)["repositoryOrError"]
    if repository["__typename"] != "Repository":
        raise RunError(f"{location}: {repository.get('message')}")
    return [node for node in repository["assetNodes"] if node["isMaterializable"]]


def terminate(url: str, run_id: str) -> dict:
    """Terminate a run as the UI's button does; the answer (`__typename` TerminateRunSuccess, or a
    failure with its message). The webserver waits for the run launcher to stop the run's worker."""
    return graphql(url, TERMINATE_MUTATION, {"runId": run_id}, timeout=120)["terminateRun"]


def reload_location(url: str, location: str) -> dict:
    """Reload a location; its workspace entry (locationOrLoadError shows a load error)."""
    return graphql(url, RELOAD_MUTATION, {"location": location}, timeout=120)["reloadRepositoryLocation"]


def run_statuses(url: str) -> dict[str, str]:
    """Every run the instance holds, with its status."""
    runs = graphql(url, RUNS_QUERY, timeout=30)["runsOrError"]
    if runs["__typename"] != "Runs":
        raise RunError(f"listing runs failed: {runs}")
    return {run["runId"]: run["status"] for run in runs["results"]}


def run_ids(url: str) -> set[str]:
    """Every run the instance holds."""
    return set(run_statuses(url))


def sensor_statuses(url: str, location: str) -> dict[str, str]:
    repository = graphql(url, SENSORS_QUERY, {"location": location}, timeout=30)["repositoryOrError"]
    if repository["__typename"] != "Repository":
        raise RunError(f"{location}: {repository.get('message')}")
    return {sensor["name"]: sensor["sensorState"]["status"] for sensor in repository["sensors"]}


def stop_running_sensors(url: str, location: str) -> list[str]:
    """Stop every running sensor of `location` (automation included); the names stopped."""
    repository = graphql(url, SENSORS_QUERY, {"location": location}, timeout=30)["repositoryOrError"]
    if repository["__typename"] != "Repository":
        raise RunError(f"{location}: {repository.get('message')}")
    running = [sensor for sensor in repository["sensors"] if sensor["sensorState"]["status"] == "RUNNING"]
    for sensor in running:
        result = graphql(url, STOP_SENSOR_MUTATION, {"id": sensor["id"]}, timeout=30)["stopSensor"]
        if result["__typename"] != "StopSensorMutationResult":
            raise RunError(f"stopping sensor {sensor['name']} of {location} failed: {result}")
    return [sensor["name"] for sensor in running]


def reset_sensor(url: str, location: str, name: str) -> None:
    """Give a sensor back the status its code declares (e.g. a default-running automation sensor)."""
    selector = {"repositoryLocationName": location, "repositoryName": REPOSITORY, "sensorName": name}
    result = graphql(url, RESET_SENSOR_MUTATION, {"selector": selector}, timeout=30)["resetSensor"]
    if result["__typename"] != "Sensor":
        raise RunError(f"resetting sensor {name} of {location} failed: {result}")


def launch(
    url: str, location: str, asset_paths: list[list[str]], partition: str | tuple[str, str] | None
) -> str:
    """Submit one run of the implicit asset job, of one partition or a (first, last) range; its run id."""
    if isinstance(partition, tuple):
        tags = dict(zip(RANGE_TAGS, partition, strict=True))
    else:
        tags = {PARTITION_TAG: partition} if partition else {}
    params = {
        "selector": {
            "repositoryLocationName": location,
            "repositoryName": REPOSITORY,
            "jobName": ASSET_JOB,
            "assetSelection": [{"path": path} for path in asset_paths],
        },
        "executionMetadata": {"tags": [{"key": key, "value": value} for key, value in tags.items()]},
    }
    result = graphql(url, LAUNCH_MUTATION, {"params": params}, timeout=60)["launchRun"]
    if result["__typename"] != "LaunchRunSuccess":
        raise RunError(f"launching {location} failed: {result}")
    return result["run"]["runId"]


def wait_for_run(url: str, run_id: str, timeout: float) -> str:
    """The run's final status; raise if it has not ended within `timeout` seconds."""
    deadline = time.monotonic() + timeout
    status = "UNKNOWN"
    while time.monotonic() < deadline:
        run = graphql(url, RUN_QUERY, {"runId": run_id}, timeout=30)["runOrError"]
        status = run.get("status", run["__typename"])
        if status in TERMINAL_STATUSES:
            return status
        time.sleep(1)
    raise RunError(f"run {run_id} still {status} after {timeout:.0f} s")


def run_failures(url: str, run_id: str) -> list[str]:
    """The step and run failure messages of a run, for an error a person can act on."""
    logs = graphql(url, RUN_FAILURES_QUERY, {"runId": run_id}, timeout=30)["logsForRun"]
    messages = []
    for event in logs.get("events", []):
        error = (event.get("error") or {}).get("message")
        if event["__typename"] in {"ExecutionStepFailureEvent", "RunFailureEvent"} or error:
            messages.append(f"{event.get('stepKey') or event['__typename']}: {error or event.get('message')}")
    return messages


def captured_logs(url: str, run_id: str) -> dict[str, dict]:
    """The step output (stdout, stderr) a run captured, as the UI shows it: file key -> capturedLogs."""
    events = graphql(url, LOGS_CAPTURED_QUERY, {"runId": run_id}, timeout=30)["logsForRun"]["events"]
    keys = {event["fileKey"] for event in events if event.get("fileKey")}
    return {
        key: graphql(url, CAPTURED_LOGS_QUERY, {"logKey": [run_id, "compute_logs", key]}, timeout=30)[
            "capturedLogs"
        ]
        for key in keys
    }


def launch_plan(nodes: list[dict]) -> list[tuple[list[list[str]], bool]]:
    """(asset paths, partitioned) per run, in order: the unpartitioned assets upstream of no
    partitioned one, then the partitioned ones (for the month), then the unpartitioned rest, so that
    a month's rows exist before what summarises them and what its tests compare against exists
    before them. A run never mixes partitioned and unpartitioned assets."""
    by_key = {tuple(node["assetKey"]["path"]): node for node in nodes}
    after_partitioned: dict[tuple, bool] = {}

    def downstream_of_partitioned(key: tuple) -> bool:
        if key not in after_partitioned:
            after_partitioned[key] = False  # cycles cannot occur in an asset graph; this ends recursion
            upstream = [tuple(dep["path"]) for dep in by_key[key]["dependencyKeys"]]
            after_partitioned[key] = any(
                dep in by_key and (by_key[dep]["isPartitioned"] or downstream_of_partitioned(dep))
                for dep in upstream
            )
        return after_partitioned[key]

    first = [
        key
        for key, node in by_key.items()
        if not node["isPartitioned"] and not downstream_of_partitioned(key)
    ]
    partitioned = [key for key, node in by_key.items() if node["isPartitioned"]]
    rest = [
        key for key, node in by_key.items() if not node["isPartitioned"] and downstream_of_partitioned(key)
    ]
    plan = [(first, False), (partitioned, True), (rest, False)]
    return [([list(key) for key in keys], is_partitioned) for keys, is_partitioned in plan if keys]


def materialize(
    url: str, location: str, asset_paths: list[list[str]], partition: str | None, timeout: float = 600
) -> RunResult:
    """Launch one run of `asset_paths`, as the UI's Materialize does, and wait for it; raise with the
    step errors unless it succeeds. Its seconds end at the run's own end time, not at the poll that
    saw it."""
    started = time.time()
    run_id = launch(url, location, asset_paths, partition)
    status = wait_for_run(url, run_id, timeout)
    if status != "SUCCESS":
        failures = "\n".join(run_failures(url, run_id))
        raise RunError(f"{location} run {run_id} ended {status}:\n{failures}")
    ended = graphql(url, RUN_QUERY, {"runId": run_id}, timeout=30)["runOrError"]["endTime"]
    return RunResult(location, run_id, status, ended - started, partition)


def materialize_location(url: str, location: str, partition: str, timeout: float = 600) -> list[RunResult]:
    """Every materializable asset of `location`, in the runs `launch_plan` orders."""
    return [
        materialize(url, location, paths, partition if partitioned else None, timeout)
        for paths, partitioned in launch_plan(asset_nodes(url, location))
    ]
