import os
import re
import subprocess
import sys
import time
from pathlib import Path

import dagster as dg
import pytest
import yaml

from devtools.locations import discover, warehouse_schemas
from devtools.paths import workspace_root
from marts.build import AUTOMATION_INTERVAL_SECONDS
from shared import postgres
from shared.daemon import ASSET_DAEMON_LOOP_SECONDS, BACKFILL_INTERVAL_SECONDS
from shared.postgres import WarehouseSettings
from shared.resources import PostgresWarehouse

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


def test_a_code_server_forks_its_runs_from_a_process_that_loaded_the_location(tmp_path):
    """`shared.code_server` (dev-local's and the stack's code servers, and the ones they start): a
    run's process is a fork of the code server's forkserver, which loaded the location once, not a
    new interpreter that imports Dagster and loads the location again."""
    (tmp_path / "defs.py").write_text(FORKED_RUN_DEFINITIONS)
    home = tmp_path / "home"
    home.mkdir()
    launch_now = {"module": "dagster._core.run_coordinator", "class": "DefaultRunCoordinator"}
    (home / "dagster.yaml").write_text(yaml.safe_dump({"run_coordinator": launch_now}))
    record = tmp_path / "record"
    subprocess.run(
        [sys.executable, "-m", "shared.code_server", "job", "launch", "-f", "defs.py", "-j", "run_it"],
        cwd=tmp_path,
        env=os.environ | {"DAGSTER_HOME": str(home), "RECORD": str(record)},
        capture_output=True,
        timeout=120,
        check=True,
    )
    deadline = time.monotonic() + 120
    while "ran" not in (lines := record.read_text()):
        assert time.monotonic() < deadline, f"the run did not run: {lines}"
        time.sleep(0.2)
    parents = {}
    for kind, pid, parent in (line.split() for line in lines.splitlines()):
        parents.setdefault(kind, {})[int(pid)] = int(parent)
    ((run, forkserver),) = parents["ran"].items()
    assert run not in parents["loaded"], "the run's process loaded the location again"
    assert parents["loaded"].get(forkserver) in parents["loaded"], (
        f"its parent loaded the location, started by the code server that loaded it: {parents}"
    )
