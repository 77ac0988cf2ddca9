"""uv commands that new-location and remove-location run on the workspace."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

UV_TIMEOUT_SECONDS = 600
#: The plan's line for what `lock_and_sync` rewrites.
LOCK_PLAN = "edit   uv.lock (uv lock), then the environment (uv sync)"


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


def restore_environment(root: Path, command: str) -> None:
    """After a roll-back (a failure or Ctrl-C): the environment synced to the restored lock, so a
    half-added or half-removed package does not stay installed. This short step is not interrupted
    by a further Ctrl-C (`uv run` forwards the first one again): it runs in a session of its own
    while this process ignores SIGINT, bounded by its timeout."""
    print(f"{command}: putting the files back and syncing the environment to uv.lock", file=sys.stderr)
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        done = subprocess.run(
            [_uv(), "sync"],
            cwd=root,
            capture_output=True,
            text=True,
            timeout=UV_TIMEOUT_SECONDS,
            check=False,
            start_new_session=True,
        )
    finally:
        signal.signal(signal.SIGINT, previous)
    if done.returncode != 0:
        print(f"{command}: uv sync failed; run it yourself:\n{done.stderr.strip()[-2000:]}", file=sys.stderr)
