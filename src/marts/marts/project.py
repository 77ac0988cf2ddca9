"""The dbt project shipped inside this package, and its parsed artifacts kept outside it.

dbt's manifest and partial-parse state live in `<artifacts dir>/<key>/`, where the key hashes
everything a parse reads: the project's files, its path, dbt's version and the profile's connection
settings (dbt re-parses everything when those change). Unchanged inputs are never parsed again; an
edited model is parsed once, by whoever loads the definitions first (the code server at load, or
`python -m marts.project` at image build). Run processes find the prepared folder and only read it.

Nothing here writes inside the package: `MARTS_DBT_ARTIFACTS_DIR` (images set it) or the user's cache
folder holds the artifacts and each dbt invocation's own target folder.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import importlib.metadata
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

from dagster_dbt import DbtProject

PROJECT_DIR = Path(__file__).parent / "dbt_project"
ARTIFACTS_ENV = "MARTS_DBT_ARTIFACTS_DIR"
#: What a parse reads besides the files: the profile's target and connection (not the password).
PROFILE_ENV = ("DBT_TARGET", "WAREHOUSE_HOST", "WAREHOUSE_PORT", "WAREHOUSE_USER", "WAREHOUSE_DB")
PARSE_INPUT_DIRS = ("models", "macros", "tests", "seeds", "snapshots", "analyses")
PARSE_INPUT_FILES = (
    "dbt_project.yml",
    "profiles.yml",
    "packages.yml",
    "dependencies.yml",
    "package-lock.yml",
)
MANIFEST = "manifest.json"
PARTIAL_PARSE = "partial_parse.msgpack"


def artifacts_dir() -> Path:
    configured = os.environ.get(ARTIFACTS_ENV)
    if configured:
        return Path(configured)
    cache = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(cache) / "dagster-platform" / "marts-dbt"


def parse_inputs(project_dir: Path = PROJECT_DIR) -> list[Path]:
    files = [project_dir / name for name in PARSE_INPUT_FILES if (project_dir / name).is_file()]
    for folder in PARSE_INPUT_DIRS:
        files += [path for path in (project_dir / folder).rglob("*") if path.is_file()]
    return sorted(files)


def parse_key(project_dir: Path = PROJECT_DIR) -> str:
    """A hash of every input of `dbt parse`: equal keys give equal manifests."""
    digest = hashlib.sha256(f"{project_dir.resolve()}\0{importlib.metadata.version('dbt-core')}\0".encode())
    for name in PROFILE_ENV:
        digest.update(f"{name}={os.environ.get(name, '')}\0".encode())
    for path in parse_inputs(project_dir):
        digest.update(f"{path.relative_to(project_dir)}\0".encode())
        digest.update(hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()[:16]


def flights_project(project_dir: Path = PROJECT_DIR) -> DbtProject:
    """The project with its target folder keyed on its parse inputs, parsed first if it never was."""
    target = artifacts_dir() / parse_key(project_dir)
    if not (target / MANIFEST).is_file():
        _parse_once(project_dir, target)
    return DbtProject(project_dir=project_dir, target_path=target)


def invocation_target(project: DbtProject, name: str) -> Path:
    """A fresh target folder for one dbt invocation, beside the prepared one and seeded with its
    partial-parse state so dbt parses only what changed since the preparation."""
    runs = project.target_path.parent / "invocations"
    runs.mkdir(parents=True, exist_ok=True)
    target = Path(tempfile.mkdtemp(prefix=f"{name}-", dir=runs))
    state = project.target_path / PARTIAL_PARSE
    if state.is_file():
        shutil.copyfile(state, target / PARTIAL_PARSE)
    return target


def _parse_once(project_dir: Path, target: Path) -> None:
    """`dbt parse` into `target`, once across processes: the first takes the lock and parses into a
    temporary folder renamed into place; the others wait and find it done."""
    target.parent.mkdir(parents=True, exist_ok=True)
    with _locked(target.parent / f"{target.name}.lock"):
        if (target / MANIFEST).is_file():
            return
        staging = Path(tempfile.mkdtemp(prefix=f"{target.name}-", dir=target.parent))
        try:
            _dbt_parse(project_dir, staging)
            staging.rename(target)
        finally:
            shutil.rmtree(staging, ignore_errors=True)


def _dbt_parse(project_dir: Path, target: Path) -> None:
    from marts.dbt_cli import dbt_cli

    project = DbtProject(project_dir=project_dir, target_path=target)
    dbt_cli(project).cli(["parse", "--quiet"], target_path=target).wait()


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    with open(path, "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


if __name__ == "__main__":
    print(flights_project().manifest_path)
