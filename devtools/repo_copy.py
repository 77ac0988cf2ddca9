"""A copy of the working tree (tracked and new files, ignored ones left out), for trying changes on."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

#: Variables that would point commands run in the copy at this checkout's environment.
LOCAL_ENV = ("VIRTUAL_ENV", "UV_PROJECT_ENVIRONMENT", "PYTHONPATH", "PLATFORM_LOCAL_HOME")


def copy_working_tree(root: Path, target: Path) -> None:
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=root,
        capture_output=True,
        check=True,
        timeout=60,
    ).stdout.decode()
    for relative in filter(None, listed.split("\0")):
        source = root / relative
        if source.is_file():
            (target / relative).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target / relative)


def copy_env() -> dict[str, str]:
    """Our environment without what would point the copy's `uv run` at this checkout's venv."""
    return {key: value for key, value in os.environ.items() if key not in LOCAL_ENV}
