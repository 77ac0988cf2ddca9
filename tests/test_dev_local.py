"""dev-local as a user runs it: a real `dagster dev`, a real embedded Postgres, Ctrl-C to stop."""

from __future__ import annotations

import os
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from devtools import typescript
from devtools.dev_local import write_instance_config
from devtools.locations import discover
from devtools.paths import LOCAL_HOME_ENV
from devtools.ports import free_port
from devtools.webserver import wait_until_loaded
from shared.postgres import WarehouseSettings
from tests.process_tools import processes_mentioning, wait_until_gone

DEV_LOCAL = str(Path(sys.executable).with_name("dev-local"))
LOCATIONS = discover(Path(__file__).parents[1])


def _env(home: Path) -> dict[str, str]:
    env = {
        key: value for key, value in os.environ.items() if key not in WarehouseSettings.ENVIRONMENT.values()
    }
    return env | {LOCAL_HOME_ENV: str(home)}


def _ignore_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def _start(home: Path, *args: str) -> subprocess.Popen:
    """Started as `dev-local &` from a script starts it: SIGINT ignored, inherited by what it runs."""
    home.mkdir(parents=True, exist_ok=True)
    with open(home.parent / "dev-local.log", "a") as log:
        return subprocess.Popen(
            [DEV_LOCAL, *args],
            env=_env(home),
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=_ignore_sigint,
        )


def _wait_loaded(port: int, home: Path) -> dict[str, dict]:
    try:
        return wait_until_loaded(f"http://127.0.0.1:{port}", timeout=300)
    except TimeoutError as error:
        log = (home.parent / "dev-local.log").read_text()[-4000:]
        raise AssertionError(f"{error}\n--- dev-local log (tail) ---\n{log}") from error


def _wait_for_line(home: Path, text: str, timeout: float = 60) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        log = (home.parent / "dev-local.log").read_text()
        if text in log:
            return log
        time.sleep(0.5)
    raise AssertionError(f"dev-local never printed {text!r}:\n{log[-4000:]}")


def _interrupt(process: subprocess.Popen, home: Path) -> str:
    """Ctrl-C as a terminal sends it: to the whole foreground process group."""
    os.killpg(process.pid, signal.SIGINT)
    process.wait(timeout=60)
    return (home.parent / "dev-local.log").read_text()


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--all"], {location.name for location in LOCATIONS}),
        (["--only", "ingest", "--code-server-timeout", "777"], {"ingest_raw"}),
    ],
    ids=["all", "only-ingest"],
)
def test_dev_local_serves_selected_locations_and_stops_cleanly(tmp_path, args, expected):
    home = tmp_path / "home"
    port = free_port()
    process = _start(home, *args, "--port", str(port))
    try:
        states = _wait_loaded(port, home)
        assert set(states) == expected
        assert all(state["error"] is None for state in states.values()), states
        assert processes_mentioning(str(home / "pgdata")), "the embedded Postgres should be running"
        log = _wait_for_line(home, "dev-local: ready in ")
        ready = next(line for line in log.splitlines() if line.startswith("dev-local: ready in "))
        assert ready.endswith(f"http://127.0.0.1:{port} ({', '.join(sorted(expected))} loaded)")
    finally:
        output = _interrupt(process, home)
    assert process.returncode == 0, output
    assert "Found a dagster instance configuration" not in output  # the repository's dagster.yaml
    assert wait_until_gone(str(home), timeout=30) == []
    assert not (home / "pgdata" / "postmaster.pid").exists(), "embedded Postgres left running"
    selection = "all" if "--all" in args else "ingest"
    assert (home / f"workspace.{selection}.yaml").is_file()
    timeout = yaml.safe_load((home / "dagster.yaml").read_text())["code_servers"]["local_startup_timeout"]
    assert timeout == (777 if "777" in args else 600)
    assert "dev-local: warehouse: socket folder /" in output


def test_warehouse_only_prints_a_line_that_reaches_it(tmp_path):
    """The pasted line is enough for a source program run by hand; Ctrl-C stops the warehouse."""
    home = tmp_path / "home"
    process = _start(home, "--warehouse-only")
    log = home.parent / "dev-local.log"
    try:
        deadline = time.monotonic() + 120
        while not (exports := [line for line in log.read_text().splitlines() if line.startswith("export ")]):
            assert process.poll() is None and time.monotonic() < deadline, log.read_text()
            time.sleep(0.2)
        env = _env(home) | dict(pair.split("=", 1) for pair in shlex.split(exports[0])[1:])
        loaded = subprocess.run(
            [sys.executable, "-m", "ingest_raw.sources", "airlines"],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert loaded.returncode == 0, loaded.stderr
        assert "loaded raw.airlines: 16 rows" in loaded.stderr
        assert not (home / "dagster.yaml").exists(), "no Dagster started"
    finally:
        output = _interrupt(process, home)
    assert process.returncode == 0, output
    assert not (home / "pgdata" / "postmaster.pid").exists(), "embedded Postgres left running"


def test_dev_local_restarts_on_data_left_by_a_killed_run(tmp_path):
    home = tmp_path / "home"
    port = free_port()
    first = _start(home, "--only", "ingest", "--port", str(port))
    _wait_loaded(port, home)
    first.kill()
    first.wait(timeout=30)
    # dagster dev dies with its parent; the embedded Postgres outlives it, for the next start to reuse.
    assert wait_until_gone(f"{home}/workspace.ingest.yaml", timeout=30) == []
    assert wait_until_gone(f"base_dir: {home}", timeout=30) == []
    assert processes_mentioning(str(home / "pgdata"))
    second = _start(home, "--only", "ingest", "--port", str(port))
    try:
        states = _wait_loaded(port, home)
        assert states["ingest_raw"]["error"] is None
    finally:
        output = _interrupt(second, home)
    assert second.returncode == 0, output
    assert wait_until_gone(str(home), timeout=30) == []


def test_unknown_location_lists_valid_names(tmp_path):
    result = subprocess.run(
        [DEV_LOCAL, "--only", "ingset"], env=_env(tmp_path), capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 2
    assert "unknown location 'ingset'" in result.stderr
    names = sorted(name for location in LOCATIONS for name in (location.name, location.short_name))
    assert f"valid names: {', '.join(dict.fromkeys(names))}" in result.stderr


def test_a_partial_warehouse_setting_is_refused_naming_what_is_missing(tmp_path):
    env = _env(tmp_path) | {"WAREHOUSE_HOST": "127.0.0.1"}
    result = subprocess.run([DEV_LOCAL], env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 2, result.stdout + result.stderr
    assert "set WAREHOUSE_USER, WAREHOUSE_DB (only WAREHOUSE_HOST is set)" in result.stderr
    assert "ready" not in result.stdout


def test_busy_port_is_a_clear_error(tmp_path):
    import socket

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = subprocess.run(
            [DEV_LOCAL, "--port", str(port)], env=_env(tmp_path), capture_output=True, text=True, timeout=60
        )
    assert result.returncode == 1
    assert f"dev-local: port {port} for the Dagster UI is in use" in result.stderr
    assert "Traceback" not in result.stderr


def test_instance_config_is_valid_and_monitors_runs(tmp_path):
    from dagster._core.instance.config import dagster_instance_config

    write_instance_config(tmp_path)
    config, _ = dagster_instance_config(str(tmp_path))
    assert config["run_monitoring"]["enabled"] is True
    assert config["run_monitoring"]["max_resume_run_attempts"] == 0  # the default launcher cannot resume
    assert config["concurrency"]["pools"]["granularity"] == "run"
    (limit,) = config["concurrency"]["runs"]["tag_concurrency_limits"]
    assert (
        limit["key"] == "dagster/code_location"
        and limit["limit"] < config["concurrency"]["runs"]["max_concurrent_runs"]
    )


def test_typescript_sources_are_built_only_when_changed():
    if typescript.node() is None:
        pytest.skip("no node on PATH: the TypeScript sources cannot be built here")
    typescript.prepare()
    assert typescript.prepare() == "TypeScript sources up to date"
    os.utime(next((typescript.PROJECT / "src").rglob("*.ts")))  # an edited source, newer than dist/
    assert typescript.prepare() == "TypeScript sources built"


def test_a_location_that_fails_to_load_is_named_with_exception_file_and_line(tmp_path):
    """dev-local's summary reads the webserver's GraphQL answer: asked the same query of a real
    workspace with a broken location, it names the user's exception and where it was raised."""
    import dagster as dg
    from dagster_graphql.test.utils import define_out_of_process_context, execute_dagster_graphql

    from devtools.webserver import LOCATIONS_QUERY, load_error

    broken = tmp_path / "broken_definitions.py"
    broken.write_text("import dagster as dg\n\nSETTING = {}['missing']\n")
    with (
        dg.instance_for_test(temp_dir=str(tmp_path)) as instance,
        define_out_of_process_context(str(broken), None, instance) as context,
    ):
        result = execute_dagster_graphql(context, LOCATIONS_QUERY)
    (entry,) = result.data["workspaceOrError"]["locationEntries"]
    error = load_error(entry["locationOrLoadError"])
    assert error.startswith("KeyError: 'missing'"), error
    assert error.endswith(f"({broken}:3)"), error
