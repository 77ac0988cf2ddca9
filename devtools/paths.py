"""Where local state lives. Cheap to import: paths only, nothing is created or read here."""

from __future__ import annotations

import os
from pathlib import Path

#: Overrides the local state folder (default: `.dagster_home/` in the workspace root).
LOCAL_HOME_ENV = "PLATFORM_LOCAL_HOME"


def workspace_root(start: Path | None = None) -> Path:
    """The uv workspace root: the nearest folder above `start` holding `uv.lock`."""
    start = (start or Path.cwd()).resolve()
    for folder in (start, *start.parents):
        if (folder / "uv.lock").is_file():
            return folder
    raise FileNotFoundError(f"no uv.lock in {start} or any parent: run from inside the workspace")


def local_home(root: Path | None = None) -> Path:
    """DAGSTER_HOME for local runs; the embedded Postgres keeps its data in `pgdata/` below it."""
    override = os.environ.get(LOCAL_HOME_ENV)
    return Path(override).resolve() if override else (root or workspace_root()) / ".dagster_home"


def embedded_pgdata(home: Path) -> Path:
    return home / "pgdata"
