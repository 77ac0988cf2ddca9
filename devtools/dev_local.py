"""`uv run dev-local`: the Dagster UI on this machine with nothing to install first.

Writes a workspace file for the selected locations and a dagster.yaml under `.dagster_home/`,
starts an embedded Postgres as the warehouse unless WAREHOUSE_HOST is set (and says where it is),
then runs `dagster dev` (or, with --warehouse-only, nothing more) in `.dagster_home/`, so the
repository's production dagster.yaml is not in its way, and says "ready" once every location has
loaded. Ctrl-C stops dagster and the embedded Postgres; the next start reuses the data.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import fcntl
import os
import shlex
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import yaml

from devtools import typescript
from devtools.embedded_postgres import EmbeddedPostgresError, embedded_postgres
from devtools.locations import Location, UnknownLocation, discover, select
from devtools.paths import embedded_pgdata, local_home, workspace_root
from devtools.ports import PortInUse, ensure_free
from devtools.webserver import location_states
from shared import postgres

DEFAULT_PORT = 3001
#: Dagster's own default (180 s) is too short for a dbt parse on a loaded machine: every location fails.
DEFAULT_CODE_SERVER_TIMEOUT = 600
SHUTDOWN_GRACE_SECONDS = 30
PR_SET_PDEATHSIG = 1
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)
PROGRESS_EVERY_SECONDS = 15
INSTANCE_CONFIG = {
    "telemetry": {"enabled": False},
    "concurrency": {
        "runs": {
            "max_concurrent_runs": 4,
            # Half the slots at most per location: a raw backfill cannot keep the marts waiting.
            "tag_concurrency_limits": [
                {"key": "dagster/code_location", "value": {"applyLimitPerUniqueValue": True}, "limit": 2}
            ],
        },
        # A run waiting for a pool slot (the ingest sources' `warehouse`) waits in the queue rather
        # than in a run slot.
        "pools": {"default_limit": 2, "granularity": "run"},
    },
    # Runs are started by their code server, each launch in a thread of its own: a slow start does
    # not hold up the queue behind it.
    "run_coordinator": {
        "module": "dagster",
        "class": "QueuedRunCoordinator",
        "config": {"dequeue_interval_seconds": 2, "dequeue_use_threads": True, "dequeue_num_workers": 4},
    },
    # A run whose process died (dev-local stopped mid-run, a crash) is marked failed, not left STARTING.
    "run_monitoring": {
        "enabled": True,
        "start_timeout_seconds": 180,
        "cancel_timeout_seconds": 60,
        "max_resume_run_attempts": 0,
        "poll_interval_seconds": 10,
    },
}
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


def write_instance_config(home: Path, code_server_timeout: int = DEFAULT_CODE_SERVER_TIMEOUT) -> None:
    config = INSTANCE_CONFIG | {"code_servers": {"local_startup_timeout": code_server_timeout}}
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


def wait_for_stop() -> None:
    """Block until Ctrl-C or SIGTERM."""
    stop_requested = threading.Event()
    previous = {sig: signal.signal(sig, lambda *_: stop_requested.set()) for sig in STOP_SIGNALS}
    try:
        stop_requested.wait()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def run_dagster_dev(workspace: Path, port: int, env: dict[str, str], locations: list[str]) -> int:
    """Run `dagster dev` in a session of its own until it exits or we are told to stop.

    One Ctrl-C reaches dev-local more than once (the terminal and `uv run` both pass it on): the first
    asks dagster dev to shut down, repeats are ignored, and whatever still runs after the grace period
    is killed, so dev-local never hangs on a stuck shutdown."""
    dagster = Path(sys.executable).with_name("dagster")
    command = [str(dagster), "dev", "-w", str(workspace), "-h", "127.0.0.1", "-p", str(port)]
    process = subprocess.Popen(
        command, env=env | GRPC_ENV, cwd=workspace.parent, start_new_session=True, preexec_fn=_prepare_child
    )
    url = f"http://127.0.0.1:{port}"
    threading.Thread(target=report_until_ready, args=(url, locations, process), daemon=True).start()
    stop_requested = threading.Event()
    previous = {sig: signal.signal(sig, lambda *_: stop_requested.set()) for sig in STOP_SIGNALS}
    try:
        while process.poll() is None and not stop_requested.wait(0.2):
            pass
        if stop_requested.is_set():
            print("dev-local: stopping dagster dev", flush=True)
            _stop(process)
            return 0
        return process.returncode
    finally:
        _kill_group(process)  # nothing of the session may outlive dev-local
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def report_until_ready(
    url: str, locations: list[str], process: subprocess.Popen, progress_every: float = PROGRESS_EVERY_SECONDS
) -> None:
    """Say "ready" when the webserver reports every location loaded, and until then, every
    `progress_every` seconds, what each location is doing; a location that failed to load is named
    with its error."""
    started = time.monotonic()
    next_progress = progress_every
    while process.poll() is None:
        elapsed = time.monotonic() - started
        try:
            states = location_states(url)
        except (OSError, RuntimeError, ValueError):
            states = {}
        if set(locations) <= states.keys() and all(state["status"] == "LOADED" for state in states.values()):
            failed = {name: state["error"] for name, state in states.items() if state["error"]}
            for name, error in failed.items():
                print(f"dev-local: location {name} failed to load: {error}", flush=True)
            loaded = ", ".join(sorted(set(states) - set(failed))) or "no location"
            print(f"dev-local: ready in {elapsed:.0f} s: {url} ({loaded} loaded)", flush=True)
            return
        if elapsed >= next_progress:
            doing = ", ".join(f"{name} {state['status'].lower()}" for name, state in sorted(states.items()))
            print(
                f"dev-local: starting, {elapsed:.0f} s: {doing or 'webserver not answering yet'}", flush=True
            )
            next_progress += progress_every
        time.sleep(1)


def _prepare_child() -> None:
    """In dagster dev, before exec: take Ctrl-C even if we were started with SIGINT ignored (`cmd &`
    in a script), and (Linux) get SIGTERM if dev-local itself is killed instead of lingering."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    if sys.platform == "linux":
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def _stop(process: subprocess.Popen) -> None:
    with contextlib.suppress(ProcessLookupError):
        process.send_signal(signal.SIGINT)
    try:
        process.wait(SHUTDOWN_GRACE_SECONDS)
    except subprocess.TimeoutExpired:
        print(f"dev-local: dagster dev still up after {SHUTDOWN_GRACE_SECONDS} s: killing it", flush=True)


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
            if any(loc.name == "ingest_raw" for loc in locations):
                print(f"dev-local: {typescript.prepare()}", flush=True)
            write_instance_config(home, args.code_server_timeout)
            workspace = workspace_file(home, locations, all_locations)
            env = os.environ | warehouse_env | {"DAGSTER_HOME": str(home)}
            names = [loc.name for loc in locations]
            print(
                f"dev-local: starting {', '.join(names)}; the UI will be http://127.0.0.1:{args.port}",
                flush=True,
            )
            code = run_dagster_dev(workspace, args.port, env, names)
    except UnknownLocation as error:
        parser.error(str(error))
    except PortInUse as error:
        sys.exit(f"dev-local: {error}: stop what holds it or pass --port")
    except (DevLocalError, EmbeddedPostgresError) as error:
        sys.exit(f"dev-local: {error}")
    sys.exit(code if code > 0 else 0)


if __name__ == "__main__":
    main()
