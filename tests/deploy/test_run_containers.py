"""compose.run-containers.yml on a real engine: every run in a container of its own, started by the
daemon from its location's image, gone after the run, with its location's credentials from files
and none in the container's configuration or the run's record; termination stops the container and
rolls the load back; dagster.yaml's run concurrency limits hold for containers."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

import pytest

from devtools import asset_runs
from devtools.locations import select
from devtools.render_deploy import read_platform
from devtools.webserver import graphql
from tests.deploy.deploy_helpers import LOCATIONS, ROOT, instance_config
from tests.deploy.docker_stack import DAGSTER_DB, ComposeProject, DockerError, docker, secret_values

pytestmark = pytest.mark.docker

FLIGHTS = [["raw", "flights"]]
MONTH = "2013-01-01"
PAUSE_STAGE = "copy"
OVERRIDE = "compose.run-containers.yml"


@pytest.fixture(scope="module")
def project(images, tmp_path_factory) -> Iterator[ComposeProject]:
    running = ComposeProject.create(tmp_path_factory.mktemp("run-containers"), images, "runs", (OVERRIDE,))
    try:
        running.up()
        running.wait_until_loaded(first_start=True)
        for location in LOCATIONS:
            asset_runs.stop_running_sensors(running.url, location.name)
        yield running
    finally:
        running.down(volumes=True)
    left = run_containers(running.name)
    assert not left, f"run containers left behind: {[c['Name'] for c in left]}"


def run_containers(project: str) -> list[dict]:
    """Every container the daemon started for a run of `project` (any state), inspected."""
    ids = docker("ps", "-aq", "--filter", "label=dagster/run_id").stdout.split()
    inspected = json.loads(docker("inspect", *ids, check=False).stdout or "[]") if ids else []
    return [c for c in inspected if f"{project}_default" in c["NetworkSettings"]["Networks"]]


def container_of(project: str, run_id: str, timeout: float = 120) -> dict:
    """The run's container once it runs (DockerRunLauncher tags the run with the container's id
    between creating and starting it: a run terminated before that keeps its container)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = [c for c in run_containers(project) if c["Config"]["Labels"]["dagster/run_id"] == run_id]
        if found and found[0]["State"]["Running"]:
            return found[0]
        time.sleep(0.5)
    raise DockerError(f"no running container for run {run_id} within {timeout:.0f} s")


def wait_until_gone(project: str, run_id: str, timeout: float = 120) -> bool:
    deadline = time.monotonic() + timeout
    while True:
        if not [c for c in run_containers(project) if c["Config"]["Labels"]["dagster/run_id"] == run_id]:
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.5)


def stop_run(project: ComposeProject, run_id: str, timeout: float = 300) -> None:
    """Terminate the run until it has finished and its container is gone (a run terminated while
    its container was being created is only marked CANCELING: terminating it again stops it)."""
    deadline = time.monotonic() + timeout
    finished = asset_runs.TERMINAL_STATUSES
    while status(project.url, run_id) not in finished or not wait_until_gone(project.name, run_id, 0):
        if time.monotonic() > deadline:
            raise DockerError(f"run {run_id} still {status(project.url, run_id)} after {timeout:.0f} s")
        asset_runs.terminate(project.url, run_id)
        wait_until_gone(project.name, run_id, timeout=10)


def passwords(project: ComposeProject) -> set[str]:
    return secret_values(project.env_files)


def status(url: str, run_id: str) -> str:
    return graphql(url, asset_runs.RUN_QUERY, {"runId": run_id}, timeout=30)["runOrError"]["status"]


def wait_for_status(url: str, run_id: str, wanted: str, timeout: float = 180) -> None:
    deadline = time.monotonic() + timeout
    while (current := status(url, run_id)) != wanted:
        assert time.monotonic() < deadline, f"run {run_id} is {current}, not {wanted}"
        time.sleep(0.5)


def month_rows(project: ComposeProject, month: int) -> list[list[str]]:
    """Count and a checksum of one month of raw.flights."""
    return project.psql(
        "select count(*), md5(coalesce(string_agg(f::text, '|' order by f::text), '')) "
        f"from raw.flights f where year = 2013 and month = {month}"
    )


def test_a_flights_month_runs_in_its_own_container_with_no_credential_in_sight(project, images):
    run_id = asset_runs.launch(project.url, "ingest_raw", FLIGHTS, MONTH)
    container = container_of(project.name, run_id)  # inspected while the run is under way
    assert container["Config"]["Image"] == images.by_target["ingest_raw"]
    assert container["Config"]["Cmd"][:3] == ["dagster", "api", "execute_run"]
    assert container["Config"]["Entrypoint"] == [
        "run-with-env", "/run/location/platform.env", "/run/location/ingest_raw.env", "--",
    ]  # fmt: skip
    mounts = {mount["Destination"]: mount for mount in container["Mounts"]}
    assert mounts["/run/location"]["Name"] == f"{project.name}_ingest_raw-credentials"
    assert mounts["/run/location"]["RW"] is False
    assert not [m for m in container["Mounts"] if "marts" in m.get("Name", "")], "never marts' credentials"
    # Its CPU and memory: the location's run size ([tool.platform.run]).
    host = container["HostConfig"]
    (ingest,) = select(LOCATIONS, ["ingest_raw"])
    size = read_platform(ROOT).run_size(ingest)
    applied = {"nano_cpus": "NanoCpus", "mem_limit": "Memory", "mem_reservation": "MemoryReservation"}
    assert size.container() == {argument: host[field] for argument, field in applied.items()}
    inspected = json.dumps(container)
    assert not [secret for secret in passwords(project) if secret in inspected]
    for service in project.containers():  # the long-lived ones (and migrate) too
        assert not [secret for secret in passwords(project) if secret in json.dumps(service)], service["Name"]

    assert asset_runs.wait_for_run(project.url, run_id, timeout=600) == "SUCCESS"
    assert wait_until_gone(project.name, run_id), "the run's container is removed after the run"
    (count, _), *_ = month_rows(project, 1)
    assert int(count) > 0
    stored = project.psql(
        f"select run_body from runs where run_id = '{run_id}' "
        f"union all select key || '=' || value from run_tags where run_id = '{run_id}'",
        database=DAGSTER_DB,
    )
    assert f"{project.name}_ingest_raw-credentials" in stored[0][0], "the run's record holds the mount"
    assert not [secret for secret in passwords(project) if secret in json.dumps(stored)]


def test_termination_stops_the_container_and_concurrency_limits_hold(project):
    """Loads pause in their copy stage (INGEST_PAUSE_AT). More flights months than slots: only as
    many containers run as dagster.yaml allows, the rest stay queued; terminating the first stops
    its container, keeps its month's rows, and lets a queued run start."""
    concurrency = instance_config()["concurrency"]
    per_location = next(
        limit["limit"]
        for limit in concurrency["runs"]["tag_concurrency_limits"]
        if limit["key"] == "dagster/code_location"
    )
    # Every ingest asset is in the `warehouse` pool: a run waits in the queue while its pool is full.
    limit = min(per_location, concurrency["pools"]["default_limit"])
    before = month_rows(project, 1)
    project.write_env_file("ingest_raw", {"INGEST_PAUSE_AT": PAUSE_STAGE})
    project.compose("restart", "daemon")  # the daemon hands the env file to run containers at start
    runs: list[str] = []
    try:
        first = asset_runs.launch(project.url, "ingest_raw", FLIGHTS, MONTH)
        runs.append(first)
        first_container = container_of(project.name, first)
        deadline = time.monotonic() + 180
        while f"paused at {PAUSE_STAGE}" not in docker("logs", first_container["Id"], check=False).stderr:
            assert time.monotonic() < deadline, "the first load never reached its copy stage"
            time.sleep(1)
        months = [f"2013-{month:02d}-01" for month in range(2, per_location + 2)]
        runs += [asset_runs.launch(project.url, "ingest_raw", FLIGHTS, month) for month in months]

        container_of(project.name, runs[limit - 1])
        for _ in range(15):  # the queued runs stay queued while the slots are taken
            assert len([c for c in run_containers(project.name) if c["State"]["Running"]]) == limit
            assert [status(project.url, run_id) for run_id in runs[limit:]] == ["QUEUED"] * len(runs[limit:])
            time.sleep(1)

        result = asset_runs.terminate(project.url, first)
        assert result["__typename"] == "TerminateRunSuccess", result
        assert wait_until_gone(project.name, first), "terminating the run stops and removes its container"
        wait_for_status(project.url, first, "CANCELED")
        assert month_rows(project, 1) == before, "the terminated load was rolled back"
        container_of(project.name, runs[limit])  # a queued run got the freed slot
        assert len([c for c in run_containers(project.name) if c["State"]["Running"]]) <= limit
    finally:
        for run_id in runs:
            stop_run(project, run_id)
        project.write_env_file("ingest_raw")
        project.compose("restart", "daemon")
    assert not run_containers(project.name)
