"""docker-stack.yml on a real swarm: a manager and two workers where `swarm-nodes up 2` has added
them (.ci/run does), else a single-node swarm. Deployed with Swarm secrets from images its nodes
pull; the main job's runs spread over the nodes as Swarm services with their location's secrets
only, a worker drained mid-job loses nothing, a terminated run's service goes, and `docker service
update --image` of one location rolls its code server while the other location keeps serving runs.
The swarm is left as it was found (left again when this test created it)."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator

import pytest

from devtools import asset_runs
from devtools.locations import select
from devtools.render_deploy import read_platform
from devtools.webserver import location_states
from tests.deploy.deploy_helpers import LOCATIONS, ROOT
from tests.deploy.docker_stack import (
    TEMPLATES,
    Images,
    SwarmStack,
    bake_images,
    docker,
    name_prefix,
    node_registry,
    push_images,
    remove_stale_stacks,
    run_services,
    single_node_swarm,
    swarm_state,
    worker_nodes,
)
from tests.deploy.swarm_runs import loaded_rows, run_main_job, running_on
from tests.ingest.ingest_helpers import WAITING_FOR_A_LOAD_LOCK, loader_sessions_matching

pytestmark = pytest.mark.docker

MONTH = "2013-01-01"
# Code servers stay on managers by default (docker-stack.yml); a location may be moved to a worker.
TO_A_WORKER = ["--constraint-rm", "node.role == manager", "--constraint-add", "node.role == worker"]


def materialize_location(url: str, location: str) -> list[str]:
    statuses = []
    for paths, partitioned in asset_runs.launch_plan(asset_runs.asset_nodes(url, location)):
        run_id = asset_runs.launch(url, location, paths, MONTH if partitioned else None)
        status = asset_runs.wait_for_run(url, run_id, timeout=900)
        assert status == "SUCCESS", (location, paths, asset_runs.run_failures(url, run_id))
        statuses.append(status)
    return statuses


@pytest.fixture(scope="module")
def swarm_images(images, tmp_path_factory) -> Iterator[Images]:
    """The session's images on a single-node swarm; on one with workers, the same release built under
    the nodes' registry and pushed there (an image names itself for its runs: a retag would not do)."""
    registry = node_registry()
    if registry is None:
        yield images
        return
    built = bake_images(f"{registry}/{name_prefix()}/", tmp_path_factory.mktemp("bake") / "bake.log")
    push_images(built)
    yield built
    docker("image", "rm", *built.by_target.values(), check=False)


@pytest.fixture(scope="module")
def stack(swarm_images, tmp_path_factory) -> Iterator[SwarmStack]:
    state = swarm_state()
    with single_node_swarm():
        stale = remove_stale_stacks()
        if stale:
            print(f"removed stacks left by an interrupted session: {', '.join(stale)}")
        running = SwarmStack(tmp_path_factory.mktemp("swarm"), swarm_images)
        try:
            running.deploy()
            yield running
        finally:
            running.remove()
            if running.extra_images:
                docker("image", "rm", *running.extra_images, check=False)
    assert swarm_state() == state, "the engine is left as it was found"


def test_the_main_job_spreads_over_the_nodes_and_a_drained_worker_loses_nothing(stack):
    """The README's main job with the automation on; a worker is drained while a run executes there."""
    workers = worker_nodes()
    if len(workers) < 2:
        pytest.skip("needs a swarm of a manager and two workers: ../shared/docker-sandbox/swarm-nodes up 2")
    job = run_main_job(stack, drain_a_worker=True)
    print(f"main job {job.seconds:.0f} s, runs per node {dict(job.runs_per_node())}, drained {job.drained} "
          f"-> done in {job.drain_to_done:.0f} s, retried {sorted(job.parents.values())}")  # fmt: skip
    assert all(job.succeeded_in_the_end(run_id) for run_id in job.statuses), job.statuses
    assert len(job.runs_per_node()) > 1, f"every run on one node: {job.nodes}"
    assert job.drained and job.drained_run in job.statuses, "no run executed on a worker to drain"
    assert job.succeeded_in_the_end(job.drained_run)
    platform = read_platform(ROOT)
    # Each run's service had its own location's secrets and the platform's, never another location's,
    for run_id, secrets in job.secrets.items():
        location = job.locations[run_id]
        assert secrets == {f"{stack.name}_platform_env", f"{stack.name}_{location}_env"}, (run_id, secrets)
        # and its CPU and memory: the location's run size ([tool.platform.run]), reserved by the swarm.
        (declared,) = select(LOCATIONS, [location])
        assert job.resources[run_id] == platform.run_size(declared).swarm(), run_id
    # What a run on a worker printed is readable through the webserver on the manager.
    on_a_worker = next(
        run_id
        for run_id, nodes in job.nodes.items()
        if job.locations[run_id] == "ingest_raw"
        and job.statuses[run_id] == "SUCCESS"
        and nodes <= set(workers)
    )
    printed = "".join(log["stderr"] for log in asset_runs.captured_logs(stack.url, on_a_worker).values())
    assert "ingest: loaded raw." in printed, printed[-2000:]
    # Nothing half-written or lost: each raw table holds the rows its latest loads reported.
    raw = [node for node in asset_runs.asset_nodes(stack.url, "ingest_raw") if node["isMaterializable"]]
    for node in raw:
        table, rows = loaded_rows(stack, node["assetKey"]["path"])
        assert stack.psql(f"select count(*) from {table}") == [[str(rows)]], table
    # Every run's service is removed once its run has ended.
    deadline = time.monotonic() + 180
    while run_services(stack.network) and time.monotonic() < deadline:
        time.sleep(2)
    assert not run_services(stack.network)


def test_a_terminated_run_ends_canceled_and_its_service_goes(stack):
    for location in LOCATIONS:
        asset_runs.stop_running_sensors(stack.url, location.name)
    # The load waits for its table's lock, held here as another load of flights would hold it: the run
    # is terminated while its load is certainly still going.
    with stack.session("begin", "select pg_advisory_xact_lock(hashtextextended('raw.flights', 0))"):
        run_id = asset_runs.launch(stack.url, "ingest_raw", [["raw", "flights"]], (MONTH, "2013-12-01"))
        deadline = time.monotonic() + 300
        while stack.psql(loader_sessions_matching(WAITING_FOR_A_LOAD_LOCK)) != [["1"]]:
            status = asset_runs.run_statuses(stack.url)[run_id]
            assert time.monotonic() < deadline, f"the load never waited for the lock (run {status})"
            time.sleep(0.5)
        assert asset_runs.run_statuses(stack.url)[run_id] == "STARTED"
        assert running_on(run_services(stack.network)[run_id])
        result = asset_runs.terminate(stack.url, run_id)
        assert result["__typename"] == "TerminateRunSuccess", result
        assert asset_runs.wait_for_run(stack.url, run_id, timeout=300) == "CANCELED"
    while run_id in run_services(stack.network):
        assert time.monotonic() < deadline + 120, "the terminated run's service is still there"
        time.sleep(1)


def test_both_locations_load_and_a_source_and_the_marts_succeed(stack):
    for location in LOCATIONS:
        asset_runs.stop_running_sensors(stack.url, location.name)
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
    """marts is rolled to a different image (a release of another commit), onto a worker where the
    swarm has workers, while ingest runs keep launching and succeeding; marts is LOADED again, and its
    next run's service starts from the new image: a run follows its code server's image, with nothing
    else to update."""
    for location in LOCATIONS:
        asset_runs.stop_running_sensors(stack.url, location.name)
    newer = bake_images(stack.images.registry, tmp_path / "bake.log", revision="f" * 40)
    stack.extra_images += newer.by_target.values()  # removed with the stack
    workers = worker_nodes()
    if workers:
        push_images(newer)
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
            *(TO_A_WORKER if workers else []),
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
    if workers:
        assert running_on(stack.service("marts")) in workers

    run_id = asset_runs.launch(stack.url, "marts", [["marts", "dim_carriers"]], None)
    image = run_container_image(run_id)
    assert asset_runs.wait_for_run(stack.url, run_id, timeout=600) == "SUCCESS"
    assert image == rolled


def run_container_image(run_id: str, timeout: float = 300) -> str:
    """The image of the service SwarmRunLauncher created for `run_id`, without its digest (read while
    it exists: it is removed after the run ends)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ids = docker("service", "ls", "-q", "--filter", f"label=dagster/run_id={run_id}").stdout.split()
        if ids:
            image = json.loads(docker("service", "inspect", ids[0]).stdout)[0]["Spec"]["TaskTemplate"]
            return image["ContainerSpec"]["Image"].partition("@")[0]
        time.sleep(0.2)
    raise AssertionError(f"no service for run {run_id} within {timeout:.0f} s")
