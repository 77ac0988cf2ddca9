"""The TypeScript source programs' project (src/ingest_raw/typescript): `npm ci` installs it from its
lock, `tsc` builds dist/. `python -m devtools.typescript` does both (CI); tests call `build()`, which
downloads nothing."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

PROJECT = Path(__file__).resolve().parents[1] / "src" / "ingest_raw" / "typescript"


class TypeScriptNotInstalled(RuntimeError):
    pass


def node() -> str | None:
    return shutil.which("node")


def install() -> None:
    subprocess.run(["npm", "ci", "--no-audit", "--no-fund"], cwd=PROJECT, check=True, timeout=600)


def build() -> Path:
    """Compile src/ to dist/ with the project's own tsc; returns the project folder."""
    tsc = PROJECT / "node_modules" / "typescript" / "bin" / "tsc"
    if not tsc.is_file():
        raise TypeScriptNotInstalled(
            f"{PROJECT} has no node_modules: run `uv run python -m devtools.typescript`"
        )
    done = subprocess.run(
        [node() or "node", str(tsc), "-p", "tsconfig.json"],
        cwd=PROJECT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    if done.returncode != 0:
        raise RuntimeError(f"tsc failed in {PROJECT}:\n{done.stdout}{done.stderr}")
    return PROJECT


if __name__ == "__main__":
    install()
    build()
