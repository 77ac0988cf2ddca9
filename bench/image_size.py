"""Installed environment size of each image (its dominant layer), from the Dockerfile's own commands.

    uv run python bench/image_size.py

Each location's environment is built by the RUN commands of its Dockerfile's builder stage (as
`uv run stack-local` builds it), once as the image does (UV_COMPILE_BYTECODE=1: .pyc included) and
once without byte-code. Baseline, built side by side the same way: `uv sync --frozen --no-dev
--no-editable --package shared` (dagster, dagster-postgres, psycopg: the floor every location image
carries). Sizes are deterministic for a given lock, so one build each is enough. Goals (issue 5):
ingest <= 200 MB, marts <= 300 MB.
"""

from __future__ import annotations

import os
import subprocess
import tempfile
from pathlib import Path

from devtools.locations import discover
from devtools.paths import workspace_root
from devtools.stack_local import LocalStack, free_ports

GOALS_MB = {"ingest_raw": 200, "marts": 300}
MB = 1_000_000


def tree_bytes(folder: Path) -> int:
    return sum(path.lstat().st_size for path in folder.rglob("*") if path.is_file() and not path.is_symlink())


def baseline(root: Path, target: Path, compile_bytecode: bool) -> int:
    env = os.environ | {
        "UV_PROJECT_ENVIRONMENT": str(target),
        "UV_COMPILE_BYTECODE": str(int(compile_bytecode)),
    }
    env.pop("VIRTUAL_ENV", None)
    subprocess.run(
        ["uv", "sync", "--frozen", "--no-dev", "--no-editable", "--package", "shared"],
        cwd=root,
        env=env,
        check=True,
        capture_output=True,
        timeout=600,
    )
    return tree_bytes(target)


def main() -> None:
    root = workspace_root(Path(__file__).parent)
    locations = discover(root)
    with tempfile.TemporaryDirectory(prefix="image-size-") as folder:
        workdir = Path(folder)
        stack = LocalStack(workdir, free_ports(locations), root=root, say=lambda message: None)
        print(f"{'environment':<12} {'bytecode':>8} {'MB':>8} {'x shared':>9} {'goal MB':>8}")
        for compile_bytecode in (True, False):
            tag = "yes" if compile_bytecode else "no"
            floor = baseline(root, workdir / f"shared-{tag}", compile_bytecode)
            print(f"{'shared':<12} {tag:>8} {floor / MB:>8.1f} {1:>9.2f} {'':>8}")
            images = {location.name: f"Dockerfile.{location.short_name}" for location in locations}
            for name, dockerfile in (images | {"platform": "Dockerfile.platform"}).items():
                target = workdir / f"{name}-{tag}"
                stack.build_environment(dockerfile, target, compile_bytecode=compile_bytecode)
                size = tree_bytes(target)
                goal = GOALS_MB.get(name, "")
                print(f"{name:<12} {tag:>8} {size / MB:>8.1f} {size / floor:>9.2f} {goal:>8}")


if __name__ == "__main__":
    main()
