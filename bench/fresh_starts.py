"""Fresh `docker compose up` starts: how many had a location in error or a schema race in Postgres's
log, and seconds from `up` to healthy vs from `up` to every location LOADED.

    uv run python bench/fresh_starts.py [--starts 20]

The release images are baked once (README's command). Each start is a fresh project (new volumes:
Postgres initialised, Dagster's schema created by the `migrate` service): `docker compose up -d
--wait` (every service healthy; timed), then every location LOADED over the webserver's GraphQL
(timed from the same `up`), watching every answer for a location in error; then Postgres's log is
searched for `already exists` / `duplicate key value` (a race to create Dagster's tables), and the
project goes (`down -v`). Printed: the counts over all starts, the medians, and the ratio healthy /
LOADED (1.0: `--wait` returns as the locations are ready; below 1: it returns before they are).
Nothing asserted.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the harness of the docker tests
from devtools.webserver import location_states
from tests.deploy.docker_stack import ComposeProject, bake_images, docker, name_prefix

RACE_MARKERS = ("already exists", "duplicate key value")


def one_start(folder: Path, images) -> tuple[float, float, list[str], int]:
    project = ComposeProject.create(folder, images, label="fresh")
    try:
        started = time.monotonic()
        project.up()
        healthy = time.monotonic() - started
        errors: list[str] = []
        while True:
            try:
                states = location_states(project.url)
            except OSError:
                states = {}
            errors += [f"{name}: {state['error'][:200]}" for name, state in states.items() if state["error"]]
            if states and all(s["status"] == "LOADED" and not s["error"] for s in states.values()):
                break
            if time.monotonic() - started > 600:
                raise SystemExit(f"not LOADED within 600 s: {states}")
            time.sleep(0.5)
        loaded = time.monotonic() - started
        log = project.compose("logs", "--no-color", "postgres").stdout
        races = sum(line.count(marker) for line in log.splitlines() for marker in RACE_MARKERS)
        return healthy, loaded, errors, races
    finally:
        project.down(volumes=True)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--starts", type=int, default=20)
    args = parser.parse_args()
    healthy, loaded = [], []
    in_error = with_race = 0
    with tempfile.TemporaryDirectory(prefix="bench-fresh-") as folder:
        images = bake_images(f"{name_prefix()}-bench/", Path(folder) / "bake.log")
        try:
            for number in range(args.starts):
                up, ready, errors, races = one_start(Path(folder) / f"start-{number}", images)
                healthy.append(up)
                loaded.append(ready)
                in_error += bool(errors)
                with_race += bool(races)
                print(
                    f"start {number + 1}/{args.starts}: healthy {up:.1f} s, LOADED {ready:.1f} s, "
                    f"locations in error: {len(errors)}, race lines in Postgres log: {races}",
                    flush=True,
                )
                for error in errors[:3]:
                    print(f"  {error}")
        finally:
            docker("image", "rm", *images.by_target.values(), check=False)
    print(f"fresh starts: {args.starts}")
    print(f"starts with a location in error: {in_error}")
    print(f"starts with `already exists` / `duplicate key value` in Postgres's log: {with_race}")
    median_up, median_ready = statistics.median(healthy), statistics.median(loaded)
    each = lambda seconds: ", ".join(f"{s:.1f}" for s in seconds)  # noqa: E731
    print(f"up -d --wait -> healthy: median {median_up:.1f} s ({each(healthy)})")
    print(f"up -> every location LOADED: median {median_ready:.1f} s ({each(loaded)})")
    print(f"ratio healthy / LOADED: {median_up / median_ready:.2f}")


if __name__ == "__main__":
    main()
