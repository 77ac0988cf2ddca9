"""uv commands that new-location and remove-location run on the workspace."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

UV_TIMEOUT_SECONDS = 600


class CommandFailed(RuntimeError):
    pass


def _uv() -> str:
    """The uv that runs us (`uv run` sets UV), else the one on PATH."""
    found = os.environ.get("UV") or shutil.which("uv")
    if found is None:
        raise CommandFailed("uv not found: run this command with `uv run`")
    return found


def run_uv(root: Path, *args: str) -> None:
    done = subprocess.run(
        [_uv(), *args], cwd=root, capture_output=True, text=True, timeout=UV_TIMEOUT_SECONDS
    )
    if done.returncode != 0:
        raise CommandFailed(f"uv {' '.join(args)} failed ({done.returncode}):\n{done.stderr.strip()[-3000:]}")


def lock_and_sync(root: Path) -> None:
    run_uv(root, "lock")
    run_uv(root, "sync")


def sync_quietly(root: Path) -> None:
    """After a roll-back: bring the environment back to the restored lock (best effort)."""
    subprocess.run([_uv(), "sync"], cwd=root, capture_output=True, timeout=UV_TIMEOUT_SECONDS, check=False)
