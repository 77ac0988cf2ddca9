"""dev-local start-up vs plain `dagster dev -w` on the same workspace file, Postgres already running.

    uv run python bench/startup.py [--runs 3] [--only ingest]

Three sides run alternately in this one process, after one warm-up each; medians are compared. The
figure is seconds from launch until the webserver reports every selected location LOADED, the dbt
project unchanged between starts:
- `dagster dev -w`: plain Dagster, finding the dbt manifest already parsed for these project files;
- `dagster dev -w, parsing`: the same with an empty `MARTS_DBT_ARTIFACTS_DIR` at each start, so
  that marts parses its dbt project at every start, as every start did before the manifest was
  keyed on the project's inputs (the issue's baseline);
- `dev-local`: the README's command (embedded Postgres restarted on its data, files written).
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
from marts.project import ARTIFACTS_ENV
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
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
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
            sides = ("dagster dev -w", "dagster dev -w, parsing", "dev-local")
            timings: dict[str, list[float]] = {side: [] for side in sides}
            for run in range(args.runs + 1):
                seconds = {}
                for side in timings:
                    port = free_port()
                    url = f"http://127.0.0.1:{port}"
                    if side == "dev-local":
                        seconds[side] = _timed_start(
                            [str(BIN / "dev-local"), *only_args, "--port", str(port)], dev_env, url
                        )
                        continue
                    env = plain_env
                    if side == "dagster dev -w, parsing":
                        env = plain_env | {ARTIFACTS_ENV: tempfile.mkdtemp(dir=scratch, prefix="dbt-")}
                    command = [str(BIN / "dagster"), "dev", "-w", str(workspace), "-p", str(port)]
                    seconds[side] = _timed_start(command, env, url)
                if run:  # the first round warms caches and initialises dev-local's data folder
                    for side, value in seconds.items():
                        timings[side].append(value)
                print(f"run {run}: " + ", ".join(f"{side} {value:.1f} s" for side, value in seconds.items()))
    medians = {side: statistics.median(values) for side, values in timings.items()}
    names = ", ".join(location.name for location in locations)
    print(f"locations: {names}; runs: {args.runs} (+1 warm-up each)")
    print("medians: " + ", ".join(f"{side} {value:.1f} s" for side, value in medians.items()))
    dev = medians["dev-local"]
    print(f"dev-local / dagster dev -w = {dev / medians['dagster dev -w']:.2f}x  (goal <= 0.8x)")
    parsing = medians["dagster dev -w, parsing"]
    print(f"dev-local / dagster dev -w parsing at every start = {dev / parsing:.2f}x")


if __name__ == "__main__":
    main()
