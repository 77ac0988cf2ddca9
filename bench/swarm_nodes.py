"""The main job on the Swarm stack across a manager and two workers vs the same stack on the manager
alone, on the same machine, side by side; then a worker drained mid-job.

    uv run python bench/swarm_nodes.py [--rounds 1] [--timeout 1500]

Needs `../shared/docker-sandbox/swarm-nodes up 2` (as root) first: a manager, two worker engines and
the registry they pull from. The release images are baked once under that registry's name and pushed.
Each round, alternating which side goes first, deploys a fresh stack (new Postgres) and runs the
README's main job ("Materialize all" on raw, every partition; the automation builds the marts):
- single node: both workers drained before the deploy, so every service and every run is placed on
  the manager;
- three nodes: the workers active, the swarm places services and runs where it likes.
Then once, on three nodes, a worker is drained as soon as one of the job's runs executes there.
Printed: wall time click -> every asset materialized, runs per node, runs retried, and for the drain
the seconds from `docker node update --availability drain` to the job's end. Two cores for all three
engines: the point is placement and correctness, not speed. Nothing asserted.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the harness of the docker tests
from tests.deploy.docker_stack import (
    SwarmStack,
    bake_images,
    docker,
    name_prefix,
    node_registry,
    push_images,
    worker_nodes,
)
from tests.deploy.swarm_runs import MainJob, run_main_job


def main_job(folder: Path, images, drained: list[str], drain_a_worker: bool, timeout: float) -> MainJob:
    for node in drained:
        docker("node", "update", "--availability", "drain", node)
    folder.mkdir(parents=True)
    stack = SwarmStack(folder, images)
    try:
        stack.deploy(timeout=600)
        return run_main_job(stack, drain_a_worker=drain_a_worker, timeout=timeout)
    finally:
        stack.remove()
        for node in drained:
            docker("node", "update", "--availability", "active", node)


def describe(label: str, job: MainJob) -> str:
    failed = sorted(run for run, status in job.statuses.items() if status != "SUCCESS")
    line = (
        f"{label}: {job.seconds:.1f} s, {len(job.statuses)} runs, runs per node {dict(job.runs_per_node())},"
        f" not SUCCESS {failed or 'none'}, retried {len(job.parents)}"
    )
    if job.drained:
        line += f"; drained {job.drained} -> job done {job.drain_to_done:.1f} s later"
    return line


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--timeout", type=float, default=1500)
    args = parser.parse_args()
    registry = node_registry()
    workers = worker_nodes()
    if registry is None or len(workers) < 2:
        sys.exit("needs a manager and two workers: ../shared/docker-sandbox/swarm-nodes up 2")
    single, spread = [], []
    with tempfile.TemporaryDirectory(prefix="bench-swarm-") as folder:
        images = bake_images(f"{registry}/{name_prefix()}-bench/", Path(folder) / "bake.log")
        push_images(images)
        try:
            for round_number in range(args.rounds):
                sides = [("single node", workers, single), ("three nodes", [], spread)]
                for label, drained, results in sides[:: 1 if round_number % 2 == 0 else -1]:
                    job = main_job(
                        Path(folder) / f"{label.replace(' ', '-')}-{round_number}",
                        images,
                        drained,
                        False,
                        args.timeout,
                    )
                    results.append(job)
                    print(describe(f"round {round_number + 1} {label}", job), flush=True)
            drain = main_job(Path(folder) / "drain", images, [], True, args.timeout)
            print(describe("three nodes, a worker drained mid-job", drain), flush=True)
        finally:
            docker("image", "rm", *images.by_target.values(), check=False)
    ratio = statistics.median(j.seconds for j in spread) / statistics.median(j.seconds for j in single)
    print(f"main job, three nodes / single node (medians): {ratio:.2f}x")


if __name__ == "__main__":
    main()
