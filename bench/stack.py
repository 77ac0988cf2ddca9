"""Stack-local: seconds from start to all locations loaded, and launch to success of one flights month.

    uv run python bench/stack.py [--runs 3] [--month 2013-01-01]

The environments are built once (from the Dockerfiles, as stack-local does); then each round, side by
side in this one process:
- loaded: the whole stack (Postgres initialised, code servers healthy, webserver and daemon, every
  location LOADED over GraphQL) vs the baseline, the same code servers started alone until their
  image's health check passes;
- flights month (running sensors paused, so nothing else runs meanwhile): launch through GraphQL
  (queued, dequeued by the daemon, run in the ingest code server) until SUCCESS vs the baseline, the
  same source program run standalone (`python -m ingest_raw.sources flights --partition MONTH`)
  with the same role and environment.
Medians over the rounds; ratios printed, nothing asserted.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

from devtools import asset_runs, process_group
from devtools.locations import discover
from devtools.paths import workspace_root
from devtools.stack_local import DEFAULT_MONTH, LocalStack, free_ports


def code_servers_alone(stack: LocalStack) -> float:
    """Seconds until every code server passes its health check, with nothing else running."""
    started = time.monotonic()
    try:
        for location in stack.locations:
            stack.start_code_server(location)
        for location in stack.locations:
            stack.wait_until_healthy(location, timeout=180)
        return time.monotonic() - started
    finally:
        for name in list(stack.servers):
            process_group.stop(stack.servers.pop(name))


def standalone_month(stack: LocalStack, month: str) -> float:
    env = stack.code_server_env("ingest_raw")
    python = stack.environment_dir("ingest_raw") / "bin" / "python"
    started = time.monotonic()
    subprocess.run(
        [str(python), "-m", "ingest_raw.sources", "flights", "--partition", month],
        env=env,
        check=True,
        capture_output=True,
        timeout=600,
    )
    return time.monotonic() - started


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--month", default=DEFAULT_MONTH)
    args = parser.parse_args()
    root = workspace_root(Path(__file__).parent)
    locations = discover(root)
    loaded, loaded_base, month, month_base = [], [], [], []
    with tempfile.TemporaryDirectory(prefix="bench-stack-") as folder:
        environments = Path(folder) / "environments"
        quiet = {"root": root, "say": lambda message: None, "environments": environments}
        built = LocalStack(Path(folder) / "build", free_ports(locations), **quiet).build_environments()
        print(
            "environments built: " + ", ".join(f"{name} {seconds:.1f} s" for name, seconds in built.items())
        )
        for round_number in range(args.runs):
            workdir = Path(folder) / f"round-{round_number}"
            with LocalStack(workdir, free_ports(locations), **quiet) as stack:
                loaded.append(stack.timings.start_to_loaded_seconds)
                # marts' automation would rebuild on the new month while the baseline runs: paused.
                for location in locations:
                    asset_runs.stop_running_sensors(stack.url, location.name)
                run = stack.materialize("ingest_raw", [["raw", "flights"]], partition=args.month)
                month.append(run.launch_to_end_seconds)
                month_base.append(standalone_month(stack, args.month))
                for name in list(stack.servers):
                    process_group.stop(stack.servers.pop(name))
                loaded_base.append(code_servers_alone(stack))
            print(
                f"round {round_number + 1}: loaded {loaded[-1]:.1f} s"
                f" (code servers alone {loaded_base[-1]:.1f} s),"
                f" flights month {month[-1]:.1f} s (standalone {month_base[-1]:.1f} s)"
            )
    for label, values, base in (
        ("start to all locations loaded", loaded, loaded_base),
        (f"flights {args.month} launch to success", month, month_base),
    ):
        median, base_median = statistics.median(values), statistics.median(base)
        print(
            f"{label}: median {median:.1f} s vs baseline {base_median:.1f} s -> {median / base_median:.2f}x"
        )


if __name__ == "__main__":
    main()
