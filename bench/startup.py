"""dev-local start-up vs plain `dagster dev -w` on the same workspace file, Postgres already running.

    uv run python bench/startup.py [--runs 3] [--only ingest]

Both sides run alternately in this one process, after one warm-up each; medians are compared.
The figure is seconds from launch until the webserver reports every selected location LOADED.
"""

from __future__ import annotations

import argparse
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from devtools.dev_local import workspace_file, write_instance_config
from devtools.embedded_postgres import embedded_postgres
from devtools.locations import discover, select
from devtools.paths import LOCAL_HOME_ENV, workspace_root
from devtools.ports import free_port
from devtools.webserver import wait_until_loaded
from shared import postgres

BIN = Path(sys.executable).parent


def _timed_start(command: list[str], env: dict[str, str], url: str) -> float:
    started = time.perf_counter()
    process = subprocess.Popen(
        command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
    )
    try:
        wait_until_loaded(url, timeout=300)
        return time.perf_counter() - started
    finally:
        os.killpg(process.pid, signal.SIGINT)
        process.wait(timeout=60)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--only", action="append", default=[])
    args = parser.parse_args()

    root = workspace_root()
    locations = select(discover(root), args.only)
    only_args = [flag for name in args.only for flag in ("--only", name)]
    clean_env = {
        k: v for k, v in os.environ.items() if k not in postgres.WarehouseSettings.ENVIRONMENT.values()
    }
    with tempfile.TemporaryDirectory(prefix="bench-startup-") as scratch:
        plain_home, dev_home = Path(scratch, "plain"), Path(scratch, "dev")
        plain_home.mkdir()
        write_instance_config(plain_home)
        workspace = workspace_file(plain_home, locations, discover(root))
        with embedded_postgres(plain_home / "pgdata") as settings:
            plain_env = clean_env | settings.to_env() | {"DAGSTER_HOME": str(plain_home)}
            dev_env = clean_env | {LOCAL_HOME_ENV: str(dev_home)}
            timings: dict[str, list[float]] = {"dagster dev -w": [], "dev-local": []}
            for run in range(args.runs + 1):
                port = free_port()
                plain = [str(BIN / "dagster"), "dev", "-w", str(workspace), "-p", str(port)]
                plain_seconds = _timed_start(plain, plain_env, f"http://127.0.0.1:{port}")
                port = free_port()
                dev = [str(BIN / "dev-local"), *only_args, "--port", str(port)]
                dev_seconds = _timed_start(dev, dev_env, f"http://127.0.0.1:{port}")
                if run:  # the first round warms caches and initialises dev-local's data folder
                    timings["dagster dev -w"].append(plain_seconds)
                    timings["dev-local"].append(dev_seconds)
                print(f"run {run}: dagster dev -w {plain_seconds:.1f} s, dev-local {dev_seconds:.1f} s")
    baseline = statistics.median(timings["dagster dev -w"])
    candidate = statistics.median(timings["dev-local"])
    names = ", ".join(location.name for location in locations)
    print(f"locations: {names}; runs: {args.runs} (+1 warm-up each)")
    print(f"median dagster dev -w: {baseline:.1f} s; median dev-local: {candidate:.1f} s")
    print(f"dev-local / dagster dev -w = {candidate / baseline:.2f}x  (goal <= 1.3x)")


if __name__ == "__main__":
    main()
