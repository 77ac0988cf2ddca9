import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import dagster as dg
import psutil
import pytest
import yaml
from psycopg.conninfo import make_conninfo

from devtools.locations import discover, warehouse_schemas
from devtools.paths import workspace_root
from devtools.ports import free_port
from marts.build import AUTOMATION_INTERVAL_SECONDS
from shared import postgres
from shared.daemon import ASSET_DAEMON_LOOP_SECONDS, BACKFILL_INTERVAL_SECONDS, RUN_QUEUE_INTERVAL_SECONDS
from shared.postgres import WarehouseSettings
from shared.resources import PostgresWarehouse
from tests.process_tools import stop_group, stops_as_from_a_terminal

PROFILE = Path(postgres.__file__).parents[2] / "marts" / "marts" / "dbt_project" / "profiles.yml"


def test_missing_settings_are_named():
    with pytest.raises(postgres.WarehouseNotConfigured, match="WAREHOUSE_HOST, WAREHOUSE_USER, WAREHOUSE_DB"):
        WarehouseSettings.from_env({})


def test_a_port_that_is_no_number_is_named():
    env = {"WAREHOUSE_HOST": "h", "WAREHOUSE_USER": "u", "WAREHOUSE_DB": "d", "WAREHOUSE_PORT": "54x"}
    with pytest.raises(postgres.WarehouseNotConfigured, match="WAREHOUSE_PORT must be a port number"):
        WarehouseSettings.from_env(env)


def test_settings_round_trip_through_child_env(warehouse):
    env = warehouse.to_env()
    assert WarehouseSettings.from_env(env) == warehouse
    with postgres.connect(WarehouseSettings.from_env(env)) as conn:
        schemas = {row[0] for row in conn.execute("select nspname from pg_namespace")}
    assert set(warehouse_schemas(discover(workspace_root()))) <= schemas


def test_libpq_tools_get_the_same_settings(warehouse, tmp_path):
    from devtools.embedded_postgres import psql_path

    done = subprocess.run(
        [psql_path(), "-X", "-At", "-c", "select current_database(), current_user"],
        env={"PATH": os.environ["PATH"]} | warehouse.libpq_env(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.stdout.strip() == f"{warehouse.dbname}|{warehouse.user}", done.stderr


def test_the_password_is_never_shown():
    assert "s3cret" not in repr(WarehouseSettings(host="h", user="u", dbname="d", password="s3cret"))


def test_the_dbt_profile_reads_the_same_variables():
    read = set(re.findall(r"env_var\('(WAREHOUSE_\w+)'", PROFILE.read_text()))
    assert read == set(WarehouseSettings.ENVIRONMENT.values())


def test_resource_reads_env_at_run_time_only(warehouse, monkeypatch):
    resource = PostgresWarehouse()  # no variable set yet: building it must not read them
    for var, value in warehouse.to_env().items():
        monkeypatch.setenv(var, value)

    @dg.asset
    def probe(warehouse: PostgresWarehouse) -> int:
        with warehouse.connect() as conn:
            return conn.execute("select 41 + 1").fetchone()[0]

    result = dg.materialize([probe], resources={"warehouse": resource})
    assert result.output_for_node("probe") == 42
    assert "WAREHOUSE_PASSWORD" not in str(result.all_events)


def test_a_partial_set_names_what_is_missing_and_what_is_set():
    assert WarehouseSettings.is_configured({"WAREHOUSE_USER": "u"})
    with pytest.raises(postgres.WarehouseNotConfigured) as raised:
        WarehouseSettings.from_env({"WAREHOUSE_HOST": "h"})
    assert "set WAREHOUSE_USER, WAREHOUSE_DB (only WAREHOUSE_HOST is set)" in str(raised.value)


@pytest.mark.parametrize(
    ("change", "variable"),
    [({"dbname": "no_such_database"}, "WAREHOUSE_DB"), ({"user": "no_such_role"}, "WAREHOUSE_USER")],
)
def test_settings_the_server_refuses_are_permanent_and_named(warehouse, change, variable):
    with pytest.raises(postgres.WarehouseNotConfigured, match=f"refused the connection: .*check {variable}"):
        postgres.connect(warehouse.replace(**change))


def _step_retries(result) -> int:
    return sum(1 for event in result.all_events if event.event_type_value == "STEP_UP_FOR_RETRY")


@pytest.mark.parametrize("settings", ["missing", "partial", "refused"])
def test_configuration_errors_fail_the_step_without_retries(warehouse, monkeypatch, settings):
    """An asset with a RetryPolicy (as every source asset has): a setting error fails once, naming the
    variable, instead of being retried like a dropped connection."""
    for var in WarehouseSettings.ENVIRONMENT.values():
        monkeypatch.delenv(var, raising=False)
    expected = {"missing": "WAREHOUSE_HOST", "partial": "WAREHOUSE_DB", "refused": "WAREHOUSE_DB"}[settings]
    if settings == "partial":
        monkeypatch.setenv("WAREHOUSE_HOST", warehouse.host)
        monkeypatch.setenv("WAREHOUSE_USER", warehouse.user)
    if settings == "refused":
        for var, value in warehouse.replace(dbname="no_such_database").to_env().items():
            monkeypatch.setenv(var, value)

    @dg.asset(retry_policy=dg.RetryPolicy(max_retries=3, delay=0))
    def probe(warehouse: PostgresWarehouse) -> None:
        warehouse.connect().close()

    result = dg.materialize([probe], resources={"warehouse": PostgresWarehouse()}, raise_on_error=False)
    assert not result.success
    assert _step_retries(result) == 0
    (failure,) = [event for event in result.all_events if event.event_type_value == "STEP_FAILURE"]
    assert expected in failure.step_failure_data.error.message


def test_plain_dbt_without_the_settings_names_the_variable(tmp_path):
    """dbt run by hand (not through Dagster) with no WAREHOUSE_HOST: the error names the variable, not
    a Unix socket path."""
    import sys

    env = {key: value for key, value in os.environ.items() if not key.startswith("WAREHOUSE_")}
    done = subprocess.run(
        [
            Path(sys.executable).with_name("dbt"),
            "debug",
            "--profiles-dir",
            PROFILE.parent,
            "--project-dir",
            PROFILE.parent,
            "--log-path",
            tmp_path,
        ],
        env=env | {"DBT_SEND_ANONYMOUS_USAGE_STATS": "false"},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode != 0
    assert "WAREHOUSE_HOST-is-not-set" in done.stdout, done.stdout[-3000:]
    assert ".s.PGSQL" not in done.stdout


FIRST_LOOP_WAIT = """
import contextlib, logging, sys, threading
import dagster as dg
from dagster._daemon.asset_daemon import AssetDaemon
from dagster._daemon.backfill import execute_backfill_iteration_loop
from shared.daemon import shorten_loops

shorten_loops()


class FirstWait(threading.Event):
    def wait(self, timeout=None):
        print(timeout)
        sys.exit(0)


class Context:  # a workspace with no code location
    instance = dg.DagsterInstance.local_temp()

    def create_request_context(self):
        return contextlib.nullcontext(self)

    def get_code_location_entries(self):
        return {}


loops = {
    "backfill": lambda: execute_backfill_iteration_loop(Context(), logging.getLogger(), FirstWait()),
    "asset": lambda: AssetDaemon({}, 30).core_loop(Context(), FirstWait()),
}
for _ in loops[sys.argv[1]]():
    pass
"""


def _first_loop_wait(loop: str) -> float:
    """Seconds the daemon's `loop` waits after its first pass, in a process of its own: the setting
    is the daemon's, not this test process's."""
    done = subprocess.run(
        [sys.executable, "-c", FIRST_LOOP_WAIT, loop], capture_output=True, text=True, timeout=120, check=True
    )
    return float(done.stdout.strip().splitlines()[-1])


def test_the_platform_daemon_s_backfill_loop_waits_its_own_interval():
    """Dagster's own backfill loop, in `shared.daemon` (dev-local's and the stack's daemon), waits
    BACKFILL_INTERVAL_SECONDS after an iteration rather than Dagster's fixed 30 s."""
    waited = _first_loop_wait("backfill")
    assert BACKFILL_INTERVAL_SECONDS / 2 < waited <= BACKFILL_INTERVAL_SECONDS < 30


def test_the_platform_daemon_looks_at_automation_sensors_every_second():
    """Its asset daemon passes over the automation sensors every ASSET_DAEMON_LOOP_SECONDS (Dagster:
    5 s, the sensors' own interval, so a tick started a moment late waited a second interval)."""
    waited = _first_loop_wait("asset")
    assert waited <= ASSET_DAEMON_LOOP_SECONDS < AUTOMATION_INTERVAL_SECONDS


QUEUE_PASS_WAIT = """
import contextlib, threading, time
import dagster as dg
from dagster._daemon import controller
from dagster._daemon.daemon import SpanMarker
from shared.daemon import shorten_loops

shorten_loops()


class Waits(threading.Event):
    seconds = 0.0

    def wait(self, timeout=None):
        time.sleep(timeout)
        Waits.seconds += timeout
        return False


class Context:  # a workspace with no code location
    def __init__(self, instance):
        self.instance = instance

    def create_request_context(self):
        return contextlib.nullcontext(self)

    def get_code_location_entries(self):
        return {}


queued = {"module": "dagster._core.run_coordinator", "class": "QueuedRunCoordinator"}
queued["config"] = {"dequeue_interval_seconds": 1}
with dg.instance_for_test(overrides={"run_coordinator": queued}) as instance:
    daemon = controller.create_daemon_of_type("QUEUED_RUN_COORDINATOR", instance)
    passes = daemon.core_loop(Context(instance), Waits())
    starts = (marker for marker in passes if marker is SpanMarker.START_SPAN)
    next(starts)
    next(starts)
    print(Waits.seconds)
"""


def test_the_platform_daemon_looks_at_the_run_queue_twice_a_second():
    """Its run queue waits RUN_QUEUE_INTERVAL_SECONDS between passes, not the instance's whole
    seconds (dagster.yaml's `dequeue_interval_seconds: 1`): each queued run waits for the next pass."""
    done = subprocess.run(
        [sys.executable, "-c", QUEUE_PASS_WAIT], capture_output=True, text=True, timeout=120, check=True
    )
    waited = float(done.stdout.strip().splitlines()[-1])
    assert waited == RUN_QUEUE_INTERVAL_SECONDS < 1, done.stdout[-2000:]


FORKED_RUN_DEFINITIONS = """
import os
from pathlib import Path

import dagster as dg

RECORD = Path(os.environ["RECORD"])
with RECORD.open("a") as record:
    record.write(f"loaded {os.getpid()} {os.getppid()}\\n")


@dg.asset
def where_it_ran() -> None:
    with RECORD.open("a") as record:
        record.write(f"ran {os.getpid()} {os.getppid()}\\n")


defs = dg.Definitions(
    assets=[where_it_ran], jobs=[dg.define_asset_job("run_it")], executor=dg.in_process_executor
)
"""


#: Two steps of one run, each recording the other sessions of the instance's database while it runs.
HELD_CONNECTIONS_DEFINITIONS = """
import os
from pathlib import Path

import dagster as dg
import psycopg


def record_sessions(step: str) -> None:
    with psycopg.connect(os.environ["INSTANCE_DB"]) as conn:
        others = conn.execute(
            "select pid from pg_stat_activity where datname = current_database() and pid <> pg_backend_pid()"
        ).fetchall()
    with Path(os.environ["RECORD"]).open("a") as record:
        record.write(f"{step} {' '.join(str(pid) for (pid,) in others)}\\n")


@dg.asset
def first() -> None:
    record_sessions("first")


@dg.asset(deps=[first])
def second() -> None:
    record_sessions("second")


defs = dg.Definitions(
    assets=[first, second], jobs=[dg.define_asset_job("run_it")], executor=dg.in_process_executor
)
"""


class ForkingCodeServer:
    """`python -m shared.code_server api grpc` serving `definitions` (FORKED_RUN_DEFINITIONS), with a
    launcher of its runs and the record of which process loaded the location and which ran; the
    instance stores in `storage`, or in files."""

    def __init__(
        self,
        folder: Path,
        definitions: str = FORKED_RUN_DEFINITIONS,
        storage: dict | None = None,
        env: dict[str, str] | None = None,
    ):
        (folder / "defs.py").write_text(definitions)
        home = folder / "home"
        home.mkdir()
        launch_now = {"module": "dagster._core.run_coordinator", "class": "DefaultRunCoordinator"}
        instance = {"run_coordinator": launch_now} | ({"storage": storage} if storage else {})
        (home / "dagster.yaml").write_text(yaml.safe_dump(instance))
        port = free_port()
        server = {"grpc_server": {"host": "localhost", "port": port, "location_name": "forked"}}
        (folder / "workspace.yaml").write_text(yaml.safe_dump({"load_from": [server]}))
        self.folder, self.record = folder, folder / "record"
        self.env = os.environ | {"DAGSTER_HOME": str(home), "RECORD": str(self.record)} | (env or {})
        self.process = subprocess.Popen(
            [sys.executable, "-m", "shared.code_server", "api", "grpc", "-p", str(port), "-f", "defs.py"],
            cwd=folder,
            env=self.env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
            preexec_fn=stops_as_from_a_terminal,
        )

    def forkserver(self) -> psutil.Process:
        deadline = time.monotonic() + 120
        while not (
            found := [
                p for p in psutil.Process(self.process.pid).children() if "forkserver" in p.cmdline()[-1]
            ]
        ):
            assert self.process.poll() is None and time.monotonic() < deadline, "no forkserver started"
            time.sleep(0.2)
        return found[0]

    def run(self) -> tuple[int, int]:
        """Launch one run and wait for it to run: its process id and its parent's."""
        ran = self.parents().get("ran", {})
        self.launch()
        deadline = time.monotonic() + 120
        while not (new := self.parents().get("ran", {}).keys() - ran.keys()):
            assert time.monotonic() < deadline, f"the run did not run: {self.parents()}"
            time.sleep(0.2)
        (run,) = new
        return run, self.parents()["ran"][run]

    def launch(self) -> None:
        launch = [sys.executable, "-m", "dagster", "job", "launch", "-w", "workspace.yaml", "-j", "run_it"]
        done = subprocess.run(
            launch, cwd=self.folder, env=self.env, capture_output=True, text=True, timeout=120
        )
        assert done.returncode == 0, done.stderr[-3000:]

    def lines(self) -> list[list[str]]:
        return [
            line.split() for line in (self.record.read_text() if self.record.exists() else "").splitlines()
        ]

    def parents(self) -> dict[str, dict[int, int]]:
        """For each kind of line, "loaded" and "ran": process id -> its parent's."""
        found = {}
        for kind, pid, parent in (line for line in self.lines() if line[0] in ("loaded", "ran")):
            found.setdefault(kind, {})[int(pid)] = int(parent)
        return found


@pytest.fixture
def forking_code_server(tmp_path):
    server = ForkingCodeServer(tmp_path)
    try:
        yield server
    finally:
        stop_group(server.process, signal.SIGTERM)


def test_a_code_server_forks_its_runs_from_a_process_that_loaded_the_location(forking_code_server):
    """`shared.code_server` (dev-local's and the stack's code servers, and the ones they start): a
    run's process is a fork of the code server's forkserver, which loaded the location once, not a
    new interpreter that imports Dagster and loads the location again."""
    forkserver = forking_code_server.forkserver()
    run, parent = forking_code_server.run()
    loaded = forking_code_server.parents()["loaded"]
    assert run not in loaded, "the run's process loaded the location again"
    assert parent == forkserver.pid and loaded.get(parent) == forking_code_server.process.pid, loaded


def test_runs_still_run_after_the_forkserver_was_killed(forking_code_server):
    """The forkserver killed (the OOM killer, a person): the next run starts a new one, which has not
    loaded the location, so the run loads it itself, as a spawned run would."""
    forking_code_server.forkserver().kill()
    run, parent = forking_code_server.run()
    assert run in forking_code_server.parents()["loaded"]
    assert "forkserver" in psutil.Process(parent).cmdline()[-1]


def test_a_forked_run_holds_its_instance_s_postgres_connections(tmp_path, fresh_warehouse):
    """Dagster's Postgres storages connect anew for every read and write; a run forked by
    `shared.code_server` holds its connections for its whole life instead: a session of the
    instance's database that was open while the run's first step ran is still open in its second."""
    settings = fresh_warehouse
    url = (
        f"postgresql+psycopg2://{settings.user}:{settings.password}@/{settings.dbname}"
        f"?host={settings.host}&port={settings.port}"
    )
    storage = {"postgres": {"postgres_url": url}}
    instance_db = {"INSTANCE_DB": make_conninfo(**settings.libpq())}
    server = ForkingCodeServer(tmp_path, HELD_CONNECTIONS_DEFINITIONS, storage, instance_db)
    try:
        server.forkserver()  # the server has loaded
        server.launch()
        deadline = time.monotonic() + 120
        while not (steps := {line[0]: set(line[1:]) for line in server.lines()}).keys() >= {
            "first",
            "second",
        }:
            assert time.monotonic() < deadline, f"the run did not run both steps: {server.lines()}"
            time.sleep(0.2)
    finally:
        stop_group(server.process, signal.SIGTERM)
    assert steps["first"] & steps["second"], steps
