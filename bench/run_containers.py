"""Compose on a real engine: launch to SUCCESS of one flights month with every run in a container of
its own (compose.run-containers.yml) vs the baseline, the same run inside the ingest code server
(compose.yml alone).

    uv run python bench/run_containers.py [--runs 3] [--month 2013-01-01]

Both projects are up side by side on the same engine (the release images from `docker buildx bake`,
as the tests build them), running sensors paused; the month is launched through each webserver's
GraphQL API alternately, one warm-up round first. Medians over the rounds; the ratio printed,
nothing asserted.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from bench.medians import print_comparison
from devtools import asset_runs
from tests.deploy.docker_stack import ComposeProject, bake_images, docker, name_prefix


def month_seconds(project: ComposeProject, month: str) -> float:
    started = time.monotonic()
    run_id = asset_runs.launch(project.url, "ingest_raw", [["raw", "flights"]], month)
    status = asset_runs.wait_for_run(project.url, run_id, timeout=900)
    if status != "SUCCESS":
        raise SystemExit(f"{project.name}: run {run_id} ended {status}")
    return time.monotonic() - started


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--month", default="2013-01-01")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-run-containers-") as scratch:
        images = bake_images(f"{name_prefix()}-bench/", Path(scratch) / "bake.log")
        projects = {
            "run container": ComposeProject.create(
                Path(scratch, "runs"), images, "bench", ("compose.run-containers.yml",)
            ),
            "code server": ComposeProject.create(Path(scratch, "default"), images, "bench"),
        }
        try:
            for project in projects.values():
                project.up()
                project.wait_until_loaded()
                for location in ("ingest_raw", "marts"):
                    asset_runs.stop_running_sensors(project.url, location)
            for project in projects.values():
                month_seconds(project, args.month)  # warm-up
            times: dict[str, list[float]] = {name: [] for name in projects}
            for _ in range(args.runs):
                for name, project in projects.items():
                    times[name].append(month_seconds(project, args.month))
        finally:
            for project in projects.values():
                project.down(volumes=True)
            docker("image", "rm", *images.by_target.values(), check=False)
    print_comparison("flights month launch->SUCCESS", times)


if __name__ == "__main__":
    main()
