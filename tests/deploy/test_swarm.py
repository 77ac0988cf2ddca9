"""docker-stack.yml on a real single-node swarm: deployed with Swarm secrets, both locations LOADED,
a source and the marts SUCCESS in run containers, and `docker service update --image` of one
location rolls its code server while the other location keeps serving runs. The swarm is left as
it was found (left again when this test created it)."""

from __future__ import annotations

import json
import os
import shutil
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from devtools import asset_runs
from devtools.ports import free_port
from devtools.webserver import location_states, wait_until_loaded
from tests.deploy.deploy_helpers import LOCATIONS, ROOT
from tests.deploy.docker_stack import Images, docker, docker_socket_group, name_prefix, write_env_files

pytestmark = pytest.mark.docker

MONTH = "2013-01-01"


@dataclass
class Stack:
    name: str
    folder: Path
    env: dict[str, str]
    url: str
    images: Images
    runs: list[tuple[str, str]] = field(default_factory=list)  # (location, status)

    def deploy(self) -> None:
        docker(
            "stack", "deploy", "--resolve-image", "never", "-c", "docker-stack.yml", self.name,
            cwd=self.folder, env=self.env, timeout=300,
        )  # fmt: skip

    def service(self, name: str) -> str:
        return f"{self.name}_{name}"

    @property
    def network(self) -> str:
        return f"{self.name}-platform"


def swarm_state() -> str:
    return docker("info", "--format", "{{.Swarm.LocalNodeState}}").stdout.strip()


def materialize_location(url: str, location: str) -> list[str]:
    statuses = []
    for paths, partitioned in asset_runs.launch_plan(asset_runs.asset_nodes(url, location)):
        run_id = asset_runs.launch(url, location, paths, MONTH if partitioned else None)
        status = asset_runs.wait_for_run(url, run_id, timeout=900)
        assert status == "SUCCESS", (location, paths, asset_runs.run_failures(url, run_id))
        statuses.append(status)
    return statuses


def wait_until_served(url: str, timeout: float = 600) -> None:
    """Every location LOADED without error. Swarm starts services in no order: a location the
    webserver could not reach yet is reloaded until its code server answers."""
    deadline = time.monotonic() + timeout
    wait_until_loaded(url, timeout=timeout)
    while failing := [name for name, state in location_states(url).items() if state["error"]]:
        assert time.monotonic() < deadline, f"locations not served: {location_states(url)}"
        for name in failing:
            asset_runs.reload_location(url, name)
        time.sleep(5)


@pytest.fixture(scope="module")
def stack(images, tmp_path_factory) -> Iterator[Stack]:
    created_swarm = swarm_state() == "inactive"
    if created_swarm:
        docker("swarm", "init", "--advertise-addr", "127.0.0.1")
    folder = tmp_path_factory.mktemp("swarm")
    write_env_files(folder / "environments")
    shutil.copy(ROOT / "docker-stack.yml", folder)
    (folder / "deploy/postgres").mkdir(parents=True)
    shutil.copy(ROOT / "deploy/postgres/init-platform.sh", folder / "deploy/postgres")
    name = f"{name_prefix()}-{uuid.uuid4().hex[:6]}"
    port = free_port()
    env = os.environ | {
        "REGISTRY": images.registry,
        "PLATFORM_TAG": images.tag,
        "STACK_NAME": name,
        "WEBSERVER_PORT": str(port),
        "DOCKER_GID": docker_socket_group(),
        **{f"{location.name.upper()}_TAG": images.tag for location in LOCATIONS},
    }
    running = Stack(name, folder, env, f"http://127.0.0.1:{port}", images)
    try:
        running.deploy()
        wait_until_served(running.url)
        for location in LOCATIONS:
            asset_runs.stop_running_sensors(running.url, location.name)
        yield running
    finally:
        docker("stack", "rm", name, check=False)
        deadline = time.monotonic() + 120
        while docker("network", "ls", "-q", "--filter", f"name={running.network}").stdout.strip():
            if time.monotonic() > deadline:
                break
            time.sleep(2)
        for volume in docker("volume", "ls", "-q", "--filter", f"name={name}_").stdout.split():
            for _ in range(30):  # a volume is busy until the stack's containers are gone
                if docker("volume", "rm", volume, check=False).returncode == 0:
                    break
                time.sleep(2)
        if created_swarm:
            docker("swarm", "leave", "--force")
    assert swarm_state() == ("inactive" if created_swarm else "active")


def test_both_locations_load_and_a_source_and_the_marts_succeed(stack):
    states = location_states(stack.url)
    assert states == {location.name: {"status": "LOADED", "error": None} for location in LOCATIONS}
    statuses = [status for location in LOCATIONS for status in materialize_location(stack.url, location.name)]
    assert statuses and set(statuses) == {"SUCCESS"}
    secrets = docker(
        "secret", "ls", "--format", "{{.Name}}", "--filter", f"name={stack.name}_"
    ).stdout.split()
    assert sorted(secrets) == sorted(
        f"{stack.name}_{name}_env" for name in ("platform", "postgres", *(loc.name for loc in LOCATIONS))
    )


def test_rolling_update_of_one_location_leaves_the_other_serving(stack):
    """marts is rolled to a new image reference (the same image under another tag) while ingest
    runs keep launching and succeeding; marts is LOADED again afterwards."""
    marts = stack.images.by_target["marts"]
    rolled = f"{marts}-rolled"
    docker("tag", marts, rolled)
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
        wait_until_served(stack.url, timeout=300)
    finally:
        stop.set()
        worker.join(timeout=700)
        docker("image", "rm", rolled, check=False)
    after = json.loads(docker("service", "inspect", stack.service("marts")).stdout)[0]
    assert after["Spec"]["TaskTemplate"]["ContainerSpec"]["Image"].startswith(rolled)
    assert after["Version"]["Index"] > before["Version"]["Index"]
    ingest = json.loads(docker("service", "inspect", stack.service("ingest_raw")).stdout)[0]
    assert "UpdateStatus" not in ingest, "the other location was not updated"
    assert ingest_statuses and set(ingest_statuses) == {"SUCCESS"}
    assert location_states(stack.url)["marts"] == {"status": "LOADED", "error": None}
