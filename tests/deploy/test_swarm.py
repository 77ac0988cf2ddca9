"""docker-stack.yml on a real single-node swarm: deployed with Swarm secrets, both locations LOADED,
a source and the marts SUCCESS in run containers, and `docker service update --image` of one
location rolls its code server while the other location keeps serving runs. The swarm is left as
it was found (left again when this test created it)."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator

import pytest

from devtools import asset_runs
from devtools.webserver import location_states
from tests.deploy.deploy_helpers import LOCATIONS
from tests.deploy.docker_stack import (
    TEMPLATES,
    SwarmStack,
    bake_images,
    docker,
    remove_stale_stacks,
    single_node_swarm,
    swarm_state,
)

pytestmark = pytest.mark.docker

MONTH = "2013-01-01"


def materialize_location(url: str, location: str) -> list[str]:
    statuses = []
    for paths, partitioned in asset_runs.launch_plan(asset_runs.asset_nodes(url, location)):
        run_id = asset_runs.launch(url, location, paths, MONTH if partitioned else None)
        status = asset_runs.wait_for_run(url, run_id, timeout=900)
        assert status == "SUCCESS", (location, paths, asset_runs.run_failures(url, run_id))
        statuses.append(status)
    return statuses


@pytest.fixture(scope="module")
def stack(images, tmp_path_factory) -> Iterator[SwarmStack]:
    state = swarm_state()
    with single_node_swarm():
        stale = remove_stale_stacks()
        if stale:
            print(f"removed stacks left by an interrupted session: {', '.join(stale)}")
        running = SwarmStack(tmp_path_factory.mktemp("swarm"), images)
        try:
            running.deploy()
            for location in LOCATIONS:
                asset_runs.stop_running_sensors(running.url, location.name)
            yield running
        finally:
            running.remove()
            if running.extra_images:
                docker("image", "rm", *running.extra_images, check=False)
    assert swarm_state() == state, "the engine is left as it was found"


def test_both_locations_load_and_a_source_and_the_marts_succeed(stack):
    states = location_states(stack.url)
    assert states == {location.name: {"status": "LOADED", "error": None} for location in LOCATIONS}
    statuses = [status for location in LOCATIONS for status in materialize_location(stack.url, location.name)]
    assert statuses and set(statuses) == {"SUCCESS"}
    secrets = docker(
        "secret", "ls", "--format", "{{.Name}}", "--filter", f"name={stack.name}_"
    ).stdout.split()
    # One Swarm secret per env file, i.e. per env template (each location's, the platform's, ...).
    assert sorted(secrets) == sorted(
        f"{stack.name}_{template.name.removesuffix('.env.template')}_env"
        for template in TEMPLATES.glob("*.env.template")
    )


def test_rolling_update_of_one_location_leaves_the_other_serving_and_runs_follow_it(stack, tmp_path):
    """marts is rolled to a different image (a release of another commit) while ingest runs keep
    launching and succeeding; marts is LOADED again, and its next run's container starts from the
    new image: a run follows its code server's image, with nothing else to update."""
    newer = bake_images(stack.images.registry, tmp_path / "bake.log", revision="f" * 40)
    stack.extra_images += newer.by_target.values()  # removed with the stack
    rolled = newer.by_target["marts"]
    assert rolled != stack.images.by_target["marts"]
    ingest_statuses: list[str] = []
    stop = threading.Event()

    def keep_running_ingest() -> None:
        while not stop.is_set():
            run_id = asset_runs.launch(stack.url, "ingest_raw", [["raw", "airlines"]], None)
            ingest_statuses.append(asset_runs.wait_for_run(stack.url, run_id, timeout=600))

    worker = threading.Thread(target=keep_running_ingest)
    before = json.loads(docker("service", "inspect", stack.service("marts")).stdout)[0]
    worker.start()
    try:
        docker(
            "service", "update", "--detach=false", "--image", rolled,
            stack.service("marts"), timeout=600,
        )  # fmt: skip
        stack.wait_until_served(timeout=300)
    finally:
        stop.set()
        worker.join(timeout=700)
    after = json.loads(docker("service", "inspect", stack.service("marts")).stdout)[0]
    assert after["Spec"]["TaskTemplate"]["ContainerSpec"]["Image"].startswith(rolled)
    assert after["Version"]["Index"] > before["Version"]["Index"]
    ingest = json.loads(docker("service", "inspect", stack.service("ingest_raw")).stdout)[0]
    assert "UpdateStatus" not in ingest, "the other location was not updated"
    assert ingest_statuses and set(ingest_statuses) == {"SUCCESS"}
    assert location_states(stack.url)["marts"] == {"status": "LOADED", "error": None}

    run_id = asset_runs.launch(stack.url, "marts", [["marts", "dim_carriers"]], None)
    image = run_container_image(run_id)
    assert asset_runs.wait_for_run(stack.url, run_id, timeout=600) == "SUCCESS"
    assert image == rolled


def run_container_image(run_id: str, timeout: float = 300) -> str:
    """The image of the container DockerRunLauncher started for `run_id` (read while it exists:
    it is removed when the run ends)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ids = docker("ps", "-aq", "--filter", f"label=dagster/run_id={run_id}").stdout.split()
        if ids:
            return json.loads(docker("inspect", ids[0]).stdout)[0]["Config"]["Image"]
        time.sleep(0.2)
    raise AssertionError(f"no container for run {run_id} within {timeout:.0f} s")
