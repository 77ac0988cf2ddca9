"""The compose stack on a real engine: seconds from `docker compose up` to every location loaded, and
one flights month from launch to success through the stack vs the source program alone.

    uv run python bench/stack.py [--runs 2] [--month 2013-01-01]

The release images are baked once (README's command). Then each round, side by side, alternating:
- loaded: a fresh project (new volumes: Postgres initialised by the init script), `docker compose up
  -d --wait` of every service, then every location LOADED over the webserver's GraphQL; baseline, a
  fresh project of Postgres and the code servers alone until healthy (`up --wait postgres ingest_raw
  marts`): what Dagster's webserver and daemon add on top;
- flights month, in the full stack with the running sensors stopped (nothing else runs): launched
  through GraphQL as the UI does (queued, dequeued by the daemon, run in the ingest code server)
  until SUCCESS; baseline, the same source program run alone in the same container with the same
  role (`docker compose exec ingest_raw python -m ingest_raw.sources flights --partition MONTH`).
Medians over the rounds; ratios printed, nothing asserted.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the harness of the docker tests
from devtools import asset_runs
from devtools.locations import discover
from tests.deploy.docker_stack import ComposeProject, bake_images, docker, name_prefix


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=2)
    parser.add_argument("--month", default="2013-01-01")
    args = parser.parse_args()
    locations = [location.name for location in discover(Path(__file__).resolve().parents[1])]
    loaded, loaded_base, month, month_base = [], [], [], []
    with tempfile.TemporaryDirectory(prefix="bench-stack-") as folder:
        images = bake_images(f"{name_prefix()}-bench/", Path(folder) / "bake.log")
        try:
            for round_number in range(args.runs):
                base = ComposeProject.create(Path(folder) / f"base-{round_number}", images, label="bench")
                try:
                    loaded_base.append(base.up("postgres", *locations))
                finally:
                    base.down(volumes=True)
                full = ComposeProject.create(Path(folder) / f"full-{round_number}", images, label="bench")
                try:
                    started = time.monotonic()
                    full.up()
                    full.wait_until_loaded()
                    loaded.append(time.monotonic() - started)
                    for location in locations:
                        asset_runs.stop_running_sensors(full.url, location)
                    run = asset_runs.materialize(full.url, "ingest_raw", [["raw", "flights"]], args.month)
                    month.append(run.launch_to_end_seconds)
                    started = time.monotonic()
                    # With the settings the code server has: its env files, read by run-with-env.
                    secrets = ["/run/secrets/platform.env", "/run/secrets/ingest_raw.env"]
                    source = ["python", "-m", "ingest_raw.sources", "flights", "--partition", args.month]
                    program = ["run-with-env", *secrets, "--", *source]
                    done = full.exec("ingest_raw", *program, timeout=600)
                    month_base.append(time.monotonic() - started)
                    assert done.returncode == 0, done.stderr
                finally:
                    full.down(volumes=True)
                print(
                    f"round {round_number + 1}: loaded {loaded[-1]:.1f} s (postgres and code servers"
                    f" healthy {loaded_base[-1]:.1f} s), flights month {month[-1]:.1f} s"
                    f" (program alone {month_base[-1]:.1f} s)",
                    flush=True,
                )
        finally:
            docker("image", "rm", *images.by_target.values(), check=False)
    for label, values, base_values in (
        ("compose up to all locations loaded", loaded, loaded_base),
        (f"flights {args.month} launch to success", month, month_base),
    ):
        median, base_median = statistics.median(values), statistics.median(base_values)
        ratio = median / base_median
        print(f"{label}: median {median:.1f} s vs baseline {base_median:.1f} s -> {ratio:.2f}x")


if __name__ == "__main__":
    main()
