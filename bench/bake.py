"""`docker buildx bake` of every release image: cold (no layer cache) vs warm (nothing changed).

    uv run python bench/bake.py [--runs 2]

The README's release command (`docker buildx bake -f docker-bake.hcl --load`), alternating cold
(`--no-cache`: every layer rebuilt; uv's download cache mount stays, as on any builder that has
built before) and warm (the same command again, every layer cached: what an unchanged rebuild
costs). Medians; the ratio is warm / cold.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the harness of the docker tests
from tests.deploy.docker_stack import ROOT, bake_command, docker, head_commit, name_prefix


def bake(*extra: str) -> float:
    env = os.environ | {"REGISTRY": f"{name_prefix()}-bench/", "REVISION": head_commit()}
    started = time.monotonic()
    subprocess.run(
        bake_command("--load", *extra), cwd=ROOT, env=env, check=True, capture_output=True, timeout=3600
    )
    return time.monotonic() - started


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=2)
    args = parser.parse_args()
    cold, warm = [], []
    for round_number in range(args.runs):
        cold.append(bake("--no-cache"))
        warm.append(bake())
        print(f"round {round_number + 1}: cold {cold[-1]:.1f} s, warm {warm[-1]:.1f} s", flush=True)
    images = docker("images", "-q", "--filter", f"reference={name_prefix()}-bench/*").stdout.split()
    docker("image", "rm", "-f", *images, check=False)
    cold_median, warm_median = statistics.median(cold), statistics.median(warm)
    print(f"bake: cold median {cold_median:.1f} s, warm median {warm_median:.1f} s")
    print(f"warm / cold: {warm_median / cold_median:.2f}x")


if __name__ == "__main__":
    main()
