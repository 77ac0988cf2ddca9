"""Bytes each release image adds on top of its base image, as the engine reports them.

    uv run python bench/image_size.py

Builds the release images with the README's command (`docker buildx bake -f docker-bake.hcl
--load`; warm after the first time), then `docker image inspect` of each image and of its base
(`python:3.11.14-slim-bookworm`, the Dockerfiles' PYTHON_IMAGE). Sizes are deterministic for a lock
and a base: one build is enough. Goals (issue 5): ingest <= 200 MB, marts <= 300 MB on top of the base.
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the harness of the docker tests
from tests.deploy.docker_stack import bake_images, docker, name_prefix

BASE_IMAGE = "python:3.11.14-slim-bookworm"
GOALS_MB = {"ingest_raw": 200, "marts": 300}
MB = 1_000_000


def image_bytes(reference: str) -> int:
    return json.loads(docker("image", "inspect", reference).stdout)[0]["Size"]


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="image-size-") as folder:
        images = bake_images(f"{name_prefix()}-bench/", Path(folder) / "bake.log")
    base = image_bytes(BASE_IMAGE)
    print(f"base {BASE_IMAGE}: {base / MB:.1f} MB")
    print(f"{'image':<56} {'total MB':>9} {'added MB':>9} {'goal MB':>8} {'added/goal':>10}")
    try:
        for target, reference in images.by_target.items():
            total = image_bytes(reference)
            added = total - base
            goal = GOALS_MB.get(target)
            ratio = f"{added / MB / goal:.2f}" if goal else ""
            print(f"{reference:<56} {total / MB:>9.1f} {added / MB:>9.1f} {goal or '':>8} {ratio:>10}")
    finally:
        docker("image", "rm", *images.by_target.values(), check=False)


if __name__ == "__main__":
    main()
