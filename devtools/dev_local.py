"""`uv run dev-local`: the Dagster UI on this machine with nothing to install first.

Writes a workspace file for the selected locations and a dagster.yaml under `.dagster_home/`,
starts an embedded Postgres as the warehouse unless WAREHOUSE_HOST is set (and says where it is),
then runs `dagster dev` (devtools.dagster_dev: with the stack's daemon, shared.daemon; or, with
--warehouse-only, nothing more) in `.dagster_home/`, so the
repository's production dagster.yaml is not in its way. It prints each location's progress, a
"ready" line timed from the command's start, and a line per run started, finished or held in the
queue; Dagster's own logs go to `.dagster_home/dagster.log`. Ctrl-C stops dagster and the embedded
Postgres; the next start reuses the data.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import os
import shlex
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import yaml

from devtools import typescript
from devtools.embedded_postgres import EmbeddedPostgresError, embedded_postgres
from devtools.locations import Location, UnknownLocation, discover, select
from devtools.paths import embedded_pgdata, local_home, workspace_root
from devtools.ports import PortInUse, ensure_free
from devtools.progress import Reporter, command_start
from devtools.webserver import location_states
from shared import postgres
from shared.signals import die_with_this_process, stop_signals

DEFAULT_PORT = 3001
#: Dagster's own default (180 s) is too short for a dbt parse on a loaded machine: every location fails.
DEFAULT_CODE_SERVER_TIMEOUT = 600
SHUTDOWN_GRACE_SECONDS = 30
#: dev-local's Dagster instance: the production dagster.yaml (one place for every setting) with only
#: these deliberate differences merged over it; None removes a production key, leaving Dagster's default.
DEV_INSTANCE_OVERLAY = {
    # Dagster's own storage in SQLite files under the home: nothing to configure on a laptop.
    "storage": None,
    "concurrency": {
        # Two cores: three run workers at once (a Python start each), still at most two per location
        # (production's rule), so a raw backfill cannot keep the marts waiting.
        "runs": {"max_concurrent_runs": 3},
        # Two loads into the one local warehouse at once; a run waiting for a pool slot (the ingest
        # sources' `warehouse`) waits in the queue rather than in a run slot.
        "pools": {"default_limit": 2, "granularity": "run"},
    },
    # Someone is watching: a run whose worker died (dev-local stopped mid-run, a crash) is marked
    # failed within seconds rather than half a minute.
    "run_monitoring": {"poll_interval_seconds": 10},
}
#: Dagster's own output (webserver, daemon, code servers, npm): here, not on the terminal.
LOG_NAME = "dagster.log"
#: Dagster's gRPC calls to the code servers (launching a run among them) give up after this; its
#: default of 60 s failed runs on a busy two-core machine.
GRPC_ENV = {"DAGSTER_GRPC_TIMEOUT_SECONDS": "180"}


class DevLocalError(RuntimeError):
    pass


def workspace_file(home: Path, locations: list[Location], all_locations: list[Location]) -> Path:
    selection = "all" if locations == all_locations else "-".join(loc.short_name for loc in locations)
    entries = [{"python_module": {"module_name": loc.module, "location_name": loc.name}} for loc in locations]
    path = home / f"workspace.{selection}.yaml"
    path.write_text(yaml.safe_dump({"load_from": entries}, sort_keys=False))
    return path


def instance_config(code_server_timeout: int = DEFAULT_CODE_SERVER_TIMEOUT) -> dict:
    """The production dagster.yaml with DEV_INSTANCE_OVERLAY and the code servers' start timeout."""
    production = yaml.safe_load((workspace_root() / "dagster.yaml").read_text())
    overlay = DEV_INSTANCE_OVERLAY | {"code_servers": {"local_startup_timeout": code_server_timeout}}
    return _merge(production, overlay)


def _merge(base: dict, overlay: dict) -> dict:
    merged = dict(base)
    for key, value in overlay.items():
        if value is None:
            merged.pop(key, None)
        elif isinstance(value, dict) and isinstance(base.get(key), dict):
            merged[key] = _merge(base[key], value)
        else:
            merged[key] = value
    return merged


def write_instance_config(home: Path, code_server_timeout: int = DEFAULT_CODE_SERVER_TIMEOUT) -> None:
    config = instance_config(code_server_timeout)
    (home / "dagster.yaml").write_text(yaml.safe_dump(config, sort_keys=False))


@contextlib.contextmanager
def single_instance(home: Path) -> Iterator[None]:
    """One dev-local per home: two would share (and stop) one embedded Postgres.
    The lock dies with its process, so a killed run leaves nothing to clean up."""
    lock_path = home / "dev-local.lock"
    with open(lock_path, "a+") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            lock.seek(0)
            raise DevLocalError(
                f"another dev-local (pid {lock.read().strip() or '?'}) is using {home}; stop it first"
            ) from None
        lock.truncate(0)
        lock.write(str(os.getpid()))
        lock.flush()
        yield


@contextlib.contextmanager
def warehouse(home: Path) -> Iterator[dict[str, str]]:
    """WAREHOUSE_* for the locations: the configured warehouse, else an embedded one."""
    if postgres.WarehouseSettings.is_configured():
        print("dev-local: using the warehouse configured by WAREHOUSE_* variables", flush=True)
        yield {}
        return
    pgdata = embedded_pgdata(home)
    print(f"dev-local: starting the embedded Postgres (data in {pgdata})", flush=True)
    with embedded_postgres(pgdata) as settings:
        yield settings.to_env()


def describe_warehouse(env: dict[str, str]) -> list[str]:
    """Where the warehouse is, and the line to paste to reach it by hand (password left out)."""
    names = postgres.WarehouseSettings.ENVIRONMENT
    value = {key: env.get(var, "") for key, var in names.items()}
    where = "socket folder" if value["host"].startswith("/") else "host"
    paste = " ".join(
        f"{names[key]}={shlex.quote(value[key])}" for key in ("host", "port", "user", "dbname") if value[key]
    )
    return [
        f"dev-local: warehouse: {where} {value['host']}, port {value['port'] or '5432'},"
        f" database {value['dbname']}, user {value['user']}",
        "dev-local: to reach it by hand (e.g. uv run python -m ingest_raw.sources NAME), paste:",
        f"export {paste}",
    ]


@contextlib.contextmanager
def stop_requests() -> Iterator[Callable[[], bool]]:
    """Whether a stop (Ctrl-C, SIGTERM, a hangup: `stop_signals`) has arrived, while inside. The
    handler only appends to a list: one that takes a lock (threading.Event.set) hangs for ever when
    another signal arrives while it holds it, and one Ctrl-C reaches dev-local more than once (the
    terminal and `uv run` both pass it on)."""
    requested: list[int] = []
    previous = {sig: signal.signal(sig, lambda signum, _: requested.append(signum)) for sig in stop_signals()}
    try:
        yield lambda: bool(requested)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def wait_for_stop() -> None:
    """Block until a stop arrives."""
    with stop_requests() as stopped:
        while not stopped():
            time.sleep(0.2)


def say(line: str) -> None:
    print(f"dev-local: {line}", flush=True)


def run_dagster_dev(
    workspace: Path, port: int, env: dict[str, str], locations: list[Location], log: Path, started: float
) -> int:
    """Run `dagster dev` in a session of its own, its output appended to `log`, until it exits or we
    are told to stop; meanwhile report progress and runs (devtools.progress).

    One Ctrl-C reaches dev-local more than once (the terminal and `uv run` both pass it on): the first
    asks dagster dev to shut down, repeats are ignored, and whatever still runs after the grace period
    is killed, so dev-local never hangs on a stuck shutdown."""
    command = [
        sys.executable,
        "-m",
        "devtools.dagster_dev",
        "dev",
        "-w",
        str(workspace),
        "-h",
        "127.0.0.1",
        "-p",
        str(port),
    ]
    with open(log, "a") as output:
        output.write(f"\n==== dev-local {time.strftime('%Y-%m-%d %H:%M:%S')}: {shlex.join(command)}\n")
        output.flush()
        process = subprocess.Popen(
            command,
            env=env | GRPC_ENV,
            cwd=workspace.parent,
            stdin=subprocess.DEVNULL,
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=_prepare_child(),
        )
    url = f"http://127.0.0.1:{port}"
    reporter = Reporter(url, locations, started, say)
    threading.Thread(target=_report, args=(reporter, process), daemon=True).start()
    webserver_up = threading.Event()
    threading.Thread(target=_wait_for_webserver, args=(url, process, webserver_up), daemon=True).start()
    watcher = None
    try:
        with stop_requests() as stopped:
            while process.poll() is None and not stopped():
                if watcher is None and webserver_up.is_set():
                    watcher = start_alerts_watcher(url, env, log)
                time.sleep(0.2)
            if stopped():
                say("stopping dagster dev")
                _stop(process)
                return 0
        say(f"dagster dev exited with code {process.returncode}; its log: {log}")
        return process.returncode
    finally:
        _kill_group(process)  # nothing of the session may outlive dev-local
        if watcher is not None:
            _kill_group(watcher)


def _report(reporter: Reporter, process: subprocess.Popen) -> None:
    def alive() -> bool:
        return process.poll() is None

    if reporter.watch_loading(process.pid, alive):
        reporter.watch_runs(alive)


def _wait_for_webserver(url: str, process: subprocess.Popen, up: threading.Event) -> None:
    """Set `up` once the webserver answers: Dagster's storage exists by then (a watcher creating it
    while dagster dev does fails with `table ... already exists`)."""
    while process.poll() is None:
        try:
            location_states(url)
        except (OSError, RuntimeError, ValueError):
            time.sleep(0.5)
            continue
        up.set()
        return


def start_alerts_watcher(url: str, env: dict[str, str], log: Path) -> subprocess.Popen:
    """The alerts watcher (docs/alerts.md): prints alerts in this terminal and sends them where the
    environment's ALERTS_* say; its own log lines go to `log` with Dagster's. Started from the main
    thread: its parent-death signal follows it."""
    with open(log, "a") as output:
        return subprocess.Popen(
            [sys.executable, "-m", "shared.alerts"],
            env=env | {"ALERTS_WEBSERVER_URL": url},
            stdin=subprocess.DEVNULL,
            stderr=output,
            start_new_session=True,
            preexec_fn=_prepare_child(),
        )


def _prepare_child() -> Callable[[], None]:
    """For a child of dev-local, before exec: take Ctrl-C even if we were started with SIGINT ignored
    (`cmd &` in a script), and (Linux) get SIGTERM if dev-local itself is killed instead of lingering."""
    die_with_dev_local = die_with_this_process(signal.SIGTERM)

    def prepare() -> None:
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        die_with_dev_local()

    return prepare


def _stop(process: subprocess.Popen) -> None:
    with contextlib.suppress(ProcessLookupError):
        process.send_signal(signal.SIGINT)
    try:
        process.wait(SHUTDOWN_GRACE_SECONDS)
    except subprocess.TimeoutExpired:
        say(f"dagster dev still up after {SHUTDOWN_GRACE_SECONDS} s: killing it")


def _kill_group(process: subprocess.Popen) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(5)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="dev-local", description=__doc__.splitlines()[0])
    choice = parser.add_mutually_exclusive_group()
    choice.add_argument("--only", action="append", default=[], metavar="NAME", help="a location (repeatable)")
    choice.add_argument("--all", action="store_true", help="every location (the default)")
    choice.add_argument(
        "--warehouse-only", action="store_true", help="start only the embedded Postgres; Ctrl-C stops it"
    )
    parser.add_argument("--port", type=int, default=DEFAULT_PORT, help=f"UI port (default {DEFAULT_PORT})")
    parser.add_argument(
        "--code-server-timeout",
        type=int,
        default=DEFAULT_CODE_SERVER_TIMEOUT,
        metavar="SECONDS",
        help=f"how long a location may take to start (default {DEFAULT_CODE_SERVER_TIMEOUT})",
    )
    args = parser.parse_args(argv)
    started = command_start()
    if args.warehouse_only and postgres.WarehouseSettings.is_configured():
        parser.error("--warehouse-only starts the embedded Postgres, but WAREHOUSE_HOST names another one")
    if postgres.WarehouseSettings.is_configured():
        try:
            postgres.WarehouseSettings.from_env()
        except postgres.WarehouseNotConfigured as error:
            parser.error(f"{error}, or unset every WAREHOUSE_* variable to use the embedded Postgres")

    root = workspace_root()
    all_locations = discover(root)
    try:
        locations = select(all_locations, args.only)
        if not args.warehouse_only:
            ensure_free(args.port, "the Dagster UI")
        home = local_home(root)
        home.mkdir(parents=True, exist_ok=True)
        with single_instance(home), warehouse(home) as warehouse_env:
            print("\n".join(describe_warehouse(os.environ | warehouse_env)), flush=True)
            if args.warehouse_only:
                print("dev-local: warehouse only; Ctrl-C stops it", flush=True)
                wait_for_stop()
                sys.exit(0)
            log = home / LOG_NAME
            if any(loc.name == "ingest_raw" for loc in locations):
                say(typescript.prepare(log))
            write_instance_config(home, args.code_server_timeout)
            workspace = workspace_file(home, locations, all_locations)
            env = os.environ | warehouse_env | {"DAGSTER_HOME": str(home)}
            say(
                f"starting {', '.join(loc.name for loc in locations)}; the UI will be"
                f" http://127.0.0.1:{args.port}; Dagster's own log: {log}"
            )
            code = run_dagster_dev(workspace, args.port, env, locations, log, started)
    except UnknownLocation as error:
        parser.error(str(error))
    except PortInUse as error:
        sys.exit(f"dev-local: {error}: stop what holds it or pass --port")
    except (DevLocalError, EmbeddedPostgresError, typescript.TypeScriptNotInstalled) as error:
        sys.exit(f"dev-local: {error}")
    sys.exit(code if code > 0 else 0)


if __name__ == "__main__":
    main()
