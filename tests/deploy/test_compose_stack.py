"""The production path on a real Docker engine: the release images from `docker buildx bake`, the
stack from `docker compose up`, used through the webserver as a person uses the UI.

One stack for the module (compose up takes about 2 minutes here); the tests run in file order and the
last ones take it down. Skipped, with the reason, when no Docker engine answers.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import subprocess
import tarfile
import time
from collections import Counter
from collections.abc import Iterator

import pytest

from devtools import asset_runs
from devtools.locations import discover
from devtools.render_deploy import read_platform
from devtools.webserver import graphql, location_states
from tests.deploy.docker_stack import (
    ROOT,
    ComposeProject,
    Images,
    bake_command,
    docker,
    head_commit,
    materialize_everything,
    secret_values,
)
from tests.test_marts_end_to_end import _flights_csv

pytestmark = pytest.mark.docker

POSTGRES_IMAGE = read_platform(ROOT).postgres_image
MONTH = "2013-01-01"
LOCATIONS = discover(ROOT)
SERVICES = {"postgres", "webserver", "daemon", "alerts", *(location.name for location in LOCATIONS)}
SECRET_ASSIGNMENT = re.compile(r"(PASSWORD|SECRET|TOKEN)\w*=[^\s\"']")
QUICK_RUN = {"ingest_raw": [["raw", "airlines"]], "marts": [["marts", "dim_carriers"]]}


@pytest.fixture(scope="module")
def stack(images, tmp_path_factory) -> Iterator[ComposeProject]:
    project = ComposeProject.create(tmp_path_factory.mktemp("compose"), images)
    try:
        project.up()
        yield project
    finally:
        project.down(volumes=True)


@pytest.fixture(scope="module")
def runs(stack) -> list[asset_runs.RunResult]:
    """Every ingest source (flights: one month) and every mart, launched through the webserver."""
    stack.wait_until_loaded(first_start=True)
    return materialize_everything(stack.url, MONTH)


def inspect_image(reference: str) -> dict:
    return json.loads(docker("image", "inspect", reference).stdout)[0]


def quick_run(stack: ComposeProject, location: str) -> asset_runs.RunResult:
    return asset_runs.materialize(stack.url, location, QUICK_RUN[location], partition=None, timeout=300)


# ---- release images -------------------------------------------------------------------------


def test_release_command_needs_no_env_file_and_names_a_missing_revision(docker_engine, tmp_path):
    """The README's bake command on a clean checkout (`git archive HEAD`: no env files)."""
    checkout = tmp_path / "checkout"
    checkout.mkdir()
    archive = subprocess.run(["git", "archive", "HEAD"], cwd=ROOT, capture_output=True, check=True)
    subprocess.run(["tar", "-x", "-C", str(checkout)], input=archive.stdout, check=True)
    assert not list((checkout / "environments").glob("*.env"))
    env = {name: value for name, value in os.environ.items() if name not in {"REVISION", "REGISTRY"}}
    printed = subprocess.run(
        bake_command("--print"), cwd=checkout, env=env | {"REVISION": head_commit()},
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert printed.returncode == 0, printed.stderr
    assert set(json.loads(printed.stdout)["group"]["default"]["targets"]) == {
        "platform",
        *(location.name for location in LOCATIONS),
    }
    unset = subprocess.run(bake_command("--print"), cwd=checkout, env=env, capture_output=True, text=True)
    assert unset.returncode != 0
    assert 'Call to function "regex" failed: pattern did not match' in unset.stderr


def test_release_images_are_tagged_by_date_and_commit_with_oci_labels(images: Images):
    assert set(images.by_target) == {"platform", *(location.name for location in LOCATIONS)}
    today = dt.datetime.now(dt.UTC)
    dates = {(today - dt.timedelta(days=days)).strftime("%Y%m%d") for days in (0, 1)}
    day, _, commit = images.tag.partition("-")
    assert day in dates and commit == images.revision[:12], images.tag
    for reference in images.by_target.values():
        name = reference.removeprefix(images.registry).partition(":")[0]
        labels = inspect_image(reference)["Config"]["Labels"]
        assert labels["org.opencontainers.image.title"] == name
        assert labels["org.opencontainers.image.revision"] == images.revision
        assert labels["org.opencontainers.image.version"] == images.tag
        dt.datetime.fromisoformat(labels["org.opencontainers.image.created"])


def test_images_hold_no_secret_and_run_as_a_numeric_non_root_user(images: Images):
    for reference in images.by_target.values():
        config = inspect_image(reference)["Config"]
        assert re.fullmatch(r"[1-9]\d*:[1-9]\d*", config["User"]), f"{reference}: USER {config['User']}"
        history = docker("history", "--no-trunc", "--format", "{{.CreatedBy}}", reference).stdout
        for where, text in {
            "history": history,
            "labels": json.dumps(config["Labels"]),
            "env": "\n".join(config["Env"]),
        }.items():
            found = SECRET_ASSIGNMENT.search(text)
            assert not found, f"{reference} {where}: {found}"
        assert not secret_files(reference), f"{reference}: {secret_files(reference)}"


def test_images_carry_compiled_bytecode(images: Images):
    """Compiled at install ([tool.uv] compile-bytecode): no run worker compiles dagster at its start."""
    probe = (
        "import importlib.util as u; spec = u.find_spec('dagster'); "
        "import os; print(os.path.exists(u.cache_from_source(spec.origin)))"
    )
    for reference in images.by_target.values():
        found = docker("run", "--rm", "--entrypoint", "python", reference, "-c", probe).stdout.strip()
        assert found == "True", f"{reference}: dagster has no compiled bytecode"


def secret_files(reference: str) -> list[str]:
    """Paths in the image's filesystem that look like env files or local state: what .dockerignore
    must keep out."""
    container = docker("create", reference).stdout.strip()
    try:
        with (
            subprocess.Popen(["docker", "export", container], stdout=subprocess.PIPE) as export,
            tarfile.open(fileobj=export.stdout, mode="r|") as layers,
        ):
            return [
                member.name
                for member in layers
                if member.name.endswith(".env")
                or "/environments/" in f"/{member.name}"
                or ".dagster_home" in member.name
            ]
    finally:
        docker("rm", "-f", container)


# ---- the stack ------------------------------------------------------------------------------


def test_every_service_is_running_and_healthy_after_one_migration(stack):
    states = {entry["Service"]: (entry["State"], entry["Health"]) for entry in stack.services()}
    migrate = states.pop("migrate")
    assert states == dict.fromkeys(SERVICES, ("running", "healthy"))
    assert migrate == ("exited", "")
    (container,) = [c for c in stack.containers() if service_of(c) == "migrate"]
    assert container["State"]["ExitCode"] == 0


def test_the_alerts_watcher_watches_with_its_own_settings_only(stack):
    """The watcher runs in the platform image, reads the instance and the webserver, and only it
    gets alerts.env (never platform.env, which every code server and run receives)."""
    assert "watching every" in stack.logs("alerts")
    for container in stack.containers():
        mounted = {mount["Destination"] for mount in container["Mounts"]}
        watcher = service_of(container) == "alerts"
        assert ("/run/secrets/alerts.env" in mounted) == watcher, container["Name"]


def service_of(container: dict) -> str:
    return container["Config"]["Labels"]["com.docker.compose.service"]


def test_no_code_server_raced_for_dagsters_schema(stack):
    """The first start's Postgres log: no `relation ... already exists`, no duplicate type."""
    log = stack.compose("logs", "--no-color", "postgres").stdout
    assert "already exists" not in log and "duplicate key value" not in log, log[-3000:]


def test_no_password_in_any_containers_configuration(stack):
    """Credentials reach every container as files (secrets): `docker inspect` shows none."""
    passwords = secret_values(stack.env_files)
    assert len(passwords) >= 3 + len(LOCATIONS)
    inspected = stack.containers()
    assert {service_of(c) for c in inspected} == SERVICES | {"migrate"}
    for container in inspected:
        text = json.dumps(container)
        assert not [p for p in passwords if p in text], container["Name"]
    (postgres,) = [c for c in inspected if service_of(c) == "postgres"]
    sources = [mount.get("Source", "") for mount in postgres["Mounts"]]
    assert not [source for source in sources if source.endswith("/environments")], sources


def test_every_container_runs_as_non_root(stack):
    for service in SERVICES:
        status = stack.exec(service, "cat", "/proc/1/status").stdout
        (uids,) = re.findall(r"^Uid:\s+(.*)$", status, re.MULTILINE)
        assert "0" not in uids.split(), f"{service} runs as {uids}"


def test_every_location_is_loaded_in_the_webserver(stack):
    states = stack.wait_until_loaded()
    assert states == {location.name: {"status": "LOADED", "error": None} for location in LOCATIONS}


def test_sources_and_marts_launched_through_the_webserver_succeed(runs):
    assert [run.status for run in runs] == ["SUCCESS"] * len(runs)
    assert {run.location for run in runs} == {location.name for location in LOCATIONS}
    assert {run.partition for run in runs} == {None, MONTH}


def test_marts_agree_with_the_csv_for_the_month(stack, runs):
    year, month = (int(part) for part in MONTH.split("-")[:2])
    rows = [row for row in _flights_csv() if (int(row["year"]), int(row["month"])) == (year, month)]
    by_carrier = stack.psql(
        "select carrier_code, sum(flights) from marts.carrier_monthly_performance group by 1"
    )
    expected = Counter(row["carrier"] for row in rows)
    assert {carrier: int(flights) for carrier, flights in by_carrier} == expected
    ((route_total,),) = stack.psql("select sum(flights) from marts.route_performance")
    assert int(route_total) == len(rows) == 27_004


def test_compute_logs_are_read_through_the_webserver(stack, runs):
    """Written by the run inside the ingest code server, read by the webserver: the shared volume."""
    (flights,) = [run for run in runs if run.partition == MONTH and run.location == "ingest_raw"]
    logs = graphql(stack.url, LOGS_CAPTURED_QUERY, {"runId": flights.run_id}, timeout=30)["logsForRun"]
    (file_key,) = {event["fileKey"] for event in logs["events"] if event.get("fileKey")}
    key = [flights.run_id, "compute_logs", file_key]
    captured = graphql(stack.url, CAPTURED_LOGS_QUERY, {"logKey": key}, timeout=30)["capturedLogs"]
    assert f"ingest: loaded raw.flights partition {MONTH}: 27004 rows" in captured["stderr"]


LOGS_CAPTURED_QUERY = """
query Logs($runId: ID!) {
  logsForRun(runId: $runId) {
    __typename
    ... on EventConnection { events { __typename ... on LogsCapturedEvent { fileKey stepKeys } } }
  }
}
"""
CAPTURED_LOGS_QUERY = """
query Captured($logKey: [String!]!) { capturedLogs(logKey: $logKey) { stdout stderr } }
"""


# ---- least privilege, from inside the stack ---------------------------------------------------

FORBIDDEN = {
    # the ingest role writes raw only
    "ingest_raw": [
        "create table marts.intruder (id int)",
        "create table staging.intruder (id int)",
        "insert into marts.dim_carriers select * from marts.dim_carriers limit 1",
        "delete from marts.dim_carriers",
        "drop view staging.stg_airlines",
    ],
    # the marts role reads raw and never writes it
    "marts": [
        "create table raw.intruder (id int)",
        "insert into raw.airlines select * from raw.airlines limit 1",
        "update raw.airlines set name = name",
        "delete from raw.airlines",
        "truncate raw.airlines",
        "drop table raw.airlines",
    ],
}
ATTEMPT = """
import json, os, sys
import psycopg
settings = dict(
    host=os.environ["WAREHOUSE_HOST"], port=os.environ["WAREHOUSE_PORT"], user=os.environ["WAREHOUSE_USER"],
    password=os.environ["WAREHOUSE_PASSWORD"], dbname=os.environ["WAREHOUSE_DB"],
)
outcome = {}
for statement in json.loads(sys.argv[1]) + ["connect " + os.environ["DAGSTER_PG_DB"]]:
    try:
        if statement.startswith("connect "):
            psycopg.connect(**(settings | {"dbname": statement.split()[1]})).close()
        else:
            with psycopg.connect(**settings, autocommit=True) as conn:
                conn.execute(statement)
        outcome[statement] = "allowed"
    except psycopg.Error as error:
        outcome[statement] = error.sqlstate or str(error)
print(json.dumps(outcome))
"""


def with_credentials(location: str) -> list[str]:
    """The command prefix a code server runs under: its env files (secrets) into the environment."""
    return ["run-with-env", "/run/secrets/platform.env", f"/run/secrets/{location}.env", "--"]


@pytest.mark.parametrize("location", sorted(FORBIDDEN))
def test_each_location_role_is_refused_outside_its_schemas(stack, runs, location):
    """From the location's own container, with its own credentials (its env file)."""
    statements = FORBIDDEN[location]
    done = stack.exec(location, *with_credentials(location), "python", "-c", ATTEMPT, json.dumps(statements))
    assert done.returncode == 0, done.stderr
    outcome = json.loads(done.stdout)
    dagster_db = stack.env_files["platform"]["DAGSTER_PG_DB"]
    assert f'permission denied for database "{dagster_db}"' in outcome.pop(f"connect {dagster_db}")
    insufficient_privilege = "42501"
    assert outcome == dict.fromkeys(statements, insufficient_privilege)


def test_marts_role_reads_raw_from_its_container(stack, runs):
    check = "select count(*) from raw.airlines"
    done = stack.exec("marts", *with_credentials("marts"), "python", "-c", ATTEMPT, json.dumps([check]))
    assert json.loads(done.stdout)[check] == "allowed", done.stderr


# ---- location isolation ---------------------------------------------------------------------


def test_rebuilding_one_location_leaves_the_other_serving(stack, runs):
    """`docker compose up -d --build ingest_raw` while a marts run is in flight: marts' server is not
    restarted and its run succeeds; ingest_raw comes back with a new container and loads."""
    marts_before, ingest_before = stack.container("marts"), stack.container("ingest_raw")
    in_flight = asset_runs.launch(stack.url, "marts", QUICK_RUN["marts"], partition=None)
    stack.up("ingest_raw", build=True)
    assert asset_runs.wait_for_run(stack.url, in_flight, timeout=300) == "SUCCESS"
    marts_after, ingest_after = stack.container("marts"), stack.container("ingest_raw")
    assert ingest_after["Id"] != ingest_before["Id"], "ingest_raw was rebuilt and recreated"
    assert (marts_after["Id"], marts_after["State"]["StartedAt"], marts_after["RestartCount"]) == (
        marts_before["Id"],
        marts_before["State"]["StartedAt"],
        marts_before["RestartCount"],
    ), "marts was restarted"
    stack.wait_until_loaded()
    assert quick_run(stack, "ingest_raw").status == "SUCCESS"


def test_a_crashed_code_server_shows_its_error_and_comes_back_by_its_restart_policy(stack, runs):
    """marts' main process killed as a crash would (SIGKILL from outside; `docker kill` would count as a
    manual stop), again after each restart until the UI shows marts' error (a fast restart can
    otherwise reload before the webserver notices): ingest_raw still runs, and once the crashes stop
    marts is restarted by its policy and reloads."""
    before = stack.container("marts")
    error = crash_until_the_error_shows(stack, "marts", timeout=180)
    assert "UNAVAILABLE" in error or "unreachable" in error.lower(), error
    assert location_states(stack.url)["ingest_raw"] == {"status": "LOADED", "error": None}
    assert quick_run(stack, "ingest_raw").status == "SUCCESS"
    stack.wait_until_loaded()
    after = stack.container("marts")
    assert after["Id"] == before["Id"] and after["RestartCount"] > before["RestartCount"]
    assert quick_run_once_the_daemon_reaches(stack, "marts").status == "SUCCESS"


def quick_run_once_the_daemon_reaches(stack: ComposeProject, location: str) -> asset_runs.RunResult:
    """The daemon launches queued runs through its own copy of the workspace, which it refreshes on
    its own schedule: a run queued before it saw the restarted code server fails at launch with
    `Could not reach user code server`, and only that failure is tried again."""
    deadline = time.monotonic() + 120
    while True:
        try:
            return quick_run(stack, location)
        except asset_runs.RunError as error:
            if "Could not reach user code server" not in str(error) or time.monotonic() > deadline:
                raise
        time.sleep(5)


def kill_main_process(stack: ComposeProject, service: str) -> None:
    """SIGKILL the service's main process from the host's process namespace, through a throwaway
    container of the platform image, so that no host privileges are needed beyond the engine's."""
    pid = stack.container(service)["State"]["Pid"]
    if not pid:  # between a crash and its restart
        return
    kill = f"import os, signal; os.kill({pid}, signal.SIGKILL)"
    image = stack.images.by_target["platform"]
    docker("run", "--rm", "--pid", "host", "--user", "0", "--entrypoint", "python", image, "-c", kill)


def crash_until_the_error_shows(stack: ComposeProject, location: str, timeout: float) -> str:
    deadline = time.monotonic() + timeout
    seen = {}
    while time.monotonic() < deadline:
        kill_main_process(stack, location)
        for _ in range(8):
            seen = location_states(stack.url).get(location, {})
            if seen.get("error"):
                return seen["error"]
            time.sleep(0.25)
    raise AssertionError(f"{location} never showed an error within {timeout:.0f} s: last {seen}")


# ---- alerts ------------------------------------------------------------------------------------

#: A webhook receiver (the platform image's Python): each POSTed body on a line of its log.
WEBHOOK_RECEIVER = """
import http.server, sys
class Hook(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        print(self.rfile.read(int(self.headers["Content-Length"])).decode(), flush=True)
        self.send_response(200)
        self.end_headers()
http.server.HTTPServer(("", 8080), Hook).serve_forever()
"""


def webhook_alerts(container: str) -> list[dict]:
    lines = docker("logs", container).stdout.splitlines()
    return [json.loads(line) for line in lines if line.startswith("{")]


def wait_for_alert(container: str, status: str, about: str, timeout: float = 180) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for alert in webhook_alerts(container):
            if alert["status"] == status and about in alert["title"]:
                return alert
        time.sleep(2)
    raise AssertionError(f"no {status} alert about {about} in {timeout:.0f} s: {webhook_alerts(container)}")


def test_a_run_that_fails_for_good_reaches_a_webhook_once_and_its_fix_resolves_it(stack, runs):
    """A fault met in production: raw.airlines dropped under marts. The alerts service, its webhook a
    receiver container on the stack's network, tells of the failed run once, naming the run, location
    and asset; loading the source again and rebuilding the model resolves it."""
    receiver = f"{stack.name}-webhook"
    platform = stack.images.by_target["platform"]
    network = f"{stack.name}_default"
    docker("run", "-d", "--name", receiver, "--network", network, "--network-alias", "webhook",
           "--entrypoint", "python", platform, "-u", "-c", WEBHOOK_RECEIVER)  # fmt: skip
    try:
        stack.write_env_file(
            "alerts", {"ALERTS_WEBHOOK_URL": "http://webhook:8080/hooks", "ALERTS_POLL_SECONDS": "2"}
        )
        stack.recreate("alerts")
        stack.psql("drop table raw.airlines cascade")
        model = [["staging", "stg_airlines"]]
        with pytest.raises(asset_runs.RunError) as failed:
            asset_runs.materialize(stack.url, "marts", model, partition=None, timeout=300)
        run_id = re.search(r"run (\S+) ended FAILURE", str(failed.value)).group(1)
        opened = wait_for_alert(receiver, "open", "staging/stg_airlines")
        assert opened["title"].startswith("run of ") and " in marts failed" in opened["title"], opened
        assert f"run {run_id}: " in opened["text"], opened
        assert quick_run(stack, "ingest_raw").status == "SUCCESS"  # raw/airlines loaded again
        assert (
            asset_runs.materialize(stack.url, "marts", model, partition=None, timeout=300).status == "SUCCESS"
        )
        resolved = wait_for_alert(receiver, "resolved", "staging/stg_airlines")
        assert resolved["incident"] == opened["incident"]
        about = [
            alert["status"] for alert in webhook_alerts(receiver) if alert["incident"] == opened["incident"]
        ]
        assert about == ["open", "resolved"]
    finally:
        docker("rm", "-f", receiver, check=False)


# ---- volumes -----------------------------------------------------------------------------------


def test_down_then_up_keeps_run_history_and_warehouse_data(stack, runs):
    history = asset_runs.run_ids(stack.url)
    flights = stack.psql("select count(*) from raw.flights")
    stack.down()
    assert stack.volumes(), "compose down keeps the volumes"
    stack.up()
    stack.wait_until_loaded()
    assert asset_runs.run_ids(stack.url) >= history | {run.run_id for run in runs}
    assert stack.psql("select count(*) from raw.flights") == flights == [["27004"]]


def test_backup_and_restore_of_the_postgres_volume_round_trip(stack, runs, tmp_path):
    """docs/deploy-day2.md's recipe: stop, tar the volume, (lose it,) restore it into a new volume,
    start: run history and warehouse data are back."""
    history = asset_runs.run_ids(stack.url)
    flights = stack.psql("select count(*) from raw.flights")
    volume = f"{stack.name}_postgres-data"
    tar = ["run", "--rm", "--entrypoint", "tar", "-v", f"{tmp_path}:/backup"]
    stack.compose("stop", timeout=300)
    docker(*tar, "-v", f"{volume}:/data:ro", POSTGRES_IMAGE, "-C", "/data", "-czf", "/backup/pg.tgz", ".")
    stack.down(volumes=True)
    stack.compose("create", "postgres")
    docker(*tar, "-v", f"{volume}:/data", POSTGRES_IMAGE, "-C", "/data", "-xzf", "/backup/pg.tgz")
    stack.up()
    stack.wait_until_loaded()
    assert asset_runs.run_ids(stack.url) >= history
    assert stack.psql("select count(*) from raw.flights") == flights == [["27004"]]


def test_down_with_volumes_removes_them(stack):
    assert stack.volumes()
    stack.down(volumes=True)
    assert stack.volumes() == []
