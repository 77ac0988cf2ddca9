"""One location rolled to a new image until the webserver reports it LOADED again: Docker Swarm
(`docker service update --image` of marts: start-first rolling update, docker-stack.yml) vs the
baseline on a single host, compose recreating the same code server (`up -d --wait --force-recreate
--no-deps marts`, compose.yml).

    uv run python bench/rolling_update.py [--runs 3]

Both up side by side on the same engine (a single-node swarm made for the run and left afterwards,
when the engine was not in one), release images baked as the tests bake them; each round tags the
marts image anew, rolls each side to it alternately, then reloads the location through the webserver
until LOADED. One warm-up round; medians and their ratio printed, nothing asserted.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from bench.medians import print_comparison
from devtools import asset_runs
from tests.deploy.docker_stack import (
    ComposeProject,
    DockerError,
    SwarmStack,
    bake_images,
    docker,
    name_prefix,
    single_node_swarm,
)

LOCATION = "marts"


def loaded_again(url: str) -> None:
    entry = asset_runs.reload_location(url, LOCATION)
    if entry.get("loadStatus") != "LOADED":
        raise DockerError(f"{LOCATION} did not load again at {url}: {entry}")


def swarm_seconds(stack: SwarmStack, image: str) -> float:
    started = time.monotonic()
    docker("service", "update", "--detach=false", "--image", image, stack.service(LOCATION), timeout=600)
    loaded_again(stack.url)
    return time.monotonic() - started


def compose_seconds(project: ComposeProject) -> float:
    """The same image again (the swarm's new tag names the same image too): a new container."""
    started = time.monotonic()
    project.up("--force-recreate", "--no-deps", LOCATION)
    loaded_again(project.url)
    return time.monotonic() - started


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    times: dict[str, list[float]] = {"swarm rolling update": [], "compose recreate": []}
    with tempfile.TemporaryDirectory(prefix="bench-rolling-update-") as scratch:
        images = bake_images(f"{name_prefix()}-bench/", Path(scratch) / "bake.log")
        marts = images.by_target[LOCATION]
        tags: list[str] = []
        with single_node_swarm():
            Path(scratch, "swarm").mkdir()
            stack = SwarmStack(Path(scratch, "swarm"), images)
            project = ComposeProject.create(Path(scratch, "compose"), images, "bench")
            try:
                stack.deploy()
                project.up()
                project.wait_until_loaded()
                for round_number in range(args.runs + 1):  # round 0 warms up
                    tag = f"{marts}-r{round_number}"
                    docker("tag", marts, tag)
                    tags.append(tag)
                    swarm = swarm_seconds(stack, tag)
                    compose = compose_seconds(project)
                    if round_number:
                        times["swarm rolling update"].append(swarm)
                        times["compose recreate"].append(compose)
            finally:
                project.down(volumes=True)
                stack.remove()
                docker("image", "rm", *tags, *images.by_target.values(), check=False)
    print_comparison(f"{LOCATION} rolled until LOADED", times)


if __name__ == "__main__":
    main()
