"""compose.run-containers.yml on a real engine: every run in a container of its own, started by the
daemon from its location's image, gone after the run; termination stops it and rolls the load back;
dagster.yaml's run concurrency limits hold for containers."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from devtools import asset_runs
from devtools.webserver import graphql
from tests.deploy.deploy_helpers import instance_config
from tests.deploy.run_containers_stack import (
    RunContainersProject,
    build_images,
    container_env,
    container_of,
    docker,
    engine_unavailable,
    image,
    run_containers,
    wait_until_gone,
)

pytestmark = pytest.mark.docker

FLIGHTS = [["raw", "flights"]]
MONTH = "2013-01-01"
PAUSE_STAGE = "copy"
TERMINATE = """
mutation Terminate($runId: String!) {
  terminateRun(runId: $runId) {
    __typename
    ... on TerminateRunFailure { message }
    ... on PythonError { message }
  }
}
"""


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> Iterator[RunContainersProject]:
    reason = engine_unavailable()
    if reason:
        pytest.skip(reason)
    build_images()
    running = RunContainersProject(tmp_path_factory.mktemp("run-containers"))
    try:
        running.up()
        running.wait_until_loaded()
        for location in running.locations:
            asset_runs.stop_running_sensors(running.url, location)
        yield running
    finally:
        running.down()
    left = run_containers(running.name)
    assert not left, f"run containers left behind: {[c['Name'] for c in left]}"


def status(url: str, run_id: str) -> str:
    return graphql(url, asset_runs.RUN_QUERY, {"runId": run_id}, timeout=30)["runOrError"]["status"]


def wait_for_status(url: str, run_id: str, wanted: str, timeout: float = 180) -> None:
    deadline = time.monotonic() + timeout
    while (current := status(url, run_id)) != wanted:
        assert time.monotonic() < deadline, f"run {run_id} is {current}, not {wanted}"
        time.sleep(0.5)


def month_rows(project: RunContainersProject, month: int) -> list[str]:
    """Count and a checksum of one month of raw.flights."""
    return project.psql(
        "select count(*), md5(coalesce(string_agg(f::text, '|' order by f::text), '')) "
        f"from raw.flights f where year = 2013 and month = {month}"
    )


def test_a_flights_month_runs_in_its_own_container_from_the_ingest_image(project):
    run_id = asset_runs.launch(project.url, "ingest_raw", FLIGHTS, MONTH)
    container = container_of(project.name, run_id)
    assert container["Config"]["Image"] == image("dagster-ingest-raw")
    assert container["Config"]["Cmd"][:3] == ["dagster", "api", "execute_run"]
    env = container_env(container)
    assert env["WAREHOUSE_USER"] == "ingest_raw"
    assert env["WAREHOUSE_PASSWORD"] == project.passwords["ingest_raw"]
    assert project.passwords["marts"] not in container["Config"]["Env"].__str__(), "never marts' credentials"
    assert asset_runs.wait_for_run(project.url, run_id, timeout=600) == "SUCCESS"
    assert wait_until_gone(project.name, run_id), "the run's container is removed after the run"
    count, _ = month_rows(project, 1)[0].split("|")
    assert int(count) > 0


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
    project.restart_code_server("ingest_raw")  # it advertises its env file when it starts
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

        result = graphql(project.url, TERMINATE, {"runId": first}, timeout=60)["terminateRun"]
        assert result["__typename"] == "TerminateRunSuccess", result
        assert wait_until_gone(project.name, first), "terminating the run stops and removes its container"
        wait_for_status(project.url, first, "CANCELED")
        assert month_rows(project, 1) == before, "the terminated load was rolled back"
        container_of(project.name, runs[limit])  # a queued run got the freed slot
        assert len([c for c in run_containers(project.name) if c["State"]["Running"]]) <= limit
    finally:
        for run_id in runs:
            graphql(project.url, TERMINATE, {"runId": run_id}, timeout=60)
        for run_id in runs:
            wait_until_gone(project.name, run_id)
        project.write_env_file("ingest_raw")
        project.restart_code_server("ingest_raw")
    assert not run_containers(project.name)
