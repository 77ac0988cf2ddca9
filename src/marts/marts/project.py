"""The dbt project shipped inside this package, and its parsed artifacts kept outside it.

dbt's manifest lives in `<artifacts dir>/<key>/`, where the key hashes everything a parse reads: the
project's files, its path and dbt's version. Unchanged inputs are never parsed again; an edited model
is parsed once, by whoever loads the definitions first (the code server at load, or
`python -m marts.project` at image build). Run processes find the prepared folder and only read it.

Each dbt invocation gets a target folder of its own, seeded with dbt's partial-parse state so that
dbt parses only what changed. That state is only valid for the connection settings it was written
with (dbt re-parses everything when they change), so it is kept per connection: the first invocation
with a new connection (say an image's first run, the image being parsed without a warehouse)
leaves its state for the next ones.

The artifacts live in `MARTS_DBT_ARTIFACTS_DIR`, by default `var/marts-dbt` in the Python
environment (`.venv` of a checkout; the image's venv): never inside the package source, where
uv would see changed files and rebuild the member.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import importlib.metadata
import os
import shutil
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

from dagster_dbt import DbtProject

from shared.postgres import WarehouseSettings

PROJECT_DIR = Path(__file__).parent / "dbt_project"
ARTIFACTS_ENV = "MARTS_DBT_ARTIFACTS_DIR"
#: What dbt's partial-parse state depends on besides the files: the profile's target and connection.
PROFILE_ENV = ("DBT_TARGET", *(WarehouseSettings.ENVIRONMENT[f] for f in ("host", "port", "user", "dbname")))
PARSE_INPUT_DIRS = ("models", "macros", "tests", "seeds", "snapshots", "analyses")
PARSE_INPUT_FILES = (
    "dbt_project.yml",
    "profiles.yml",
    "packages.yml",
    "dependencies.yml",
    "package-lock.yml",
)
MANIFEST = "manifest.json"
DBT_LOG = "dbt.log"
PARTIAL_PARSE = "partial_parse.msgpack"


def artifacts_dir() -> Path:
    configured = os.environ.get(ARTIFACTS_ENV)
    return Path(configured) if configured else Path(sys.prefix) / "var" / "marts-dbt"


def parse_inputs(project_dir: Path = PROJECT_DIR) -> list[Path]:
    files = [project_dir / name for name in PARSE_INPUT_FILES if (project_dir / name).is_file()]
    for folder in PARSE_INPUT_DIRS:
        files += [path for path in (project_dir / folder).rglob("*") if path.is_file()]
    return sorted(files)


def parse_key(project_dir: Path = PROJECT_DIR) -> str:
    """A hash of every input of `dbt parse`: equal keys give equal manifests."""
    digest = hashlib.sha256(f"{project_dir.resolve()}\0{importlib.metadata.version('dbt-core')}\0".encode())
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


def connection_key() -> str:
    """A hash of what a parse reads besides the files: the current profile target and connection."""
    digest = hashlib.sha256("\0".join(os.environ.get(name, "") for name in PROFILE_ENV).encode())
    return digest.hexdigest()[:16]


def parse_state(project: DbtProject) -> Path:
    """dbt's partial-parse state for the current connection settings."""
    return project.target_path / f"{PARTIAL_PARSE}.{connection_key()}"


@contextlib.contextmanager
def invocation_target(project: DbtProject, name: str) -> Iterator[Path]:
    """A fresh target folder for one dbt invocation, beside the prepared one, seeded with the
    partial-parse state; when done, its state is kept if there was none, and the folder goes. A
    failed invocation keeps its `dbt.log` there: dagster-dbt's error names that path."""
    runs = project.target_path.parent / "invocations"
    runs.mkdir(parents=True, exist_ok=True)
    target = Path(tempfile.mkdtemp(prefix=f"{name}-", dir=runs))
    state = parse_state(project)
    try:
        if state.is_file():
            shutil.copyfile(state, target / PARTIAL_PARSE)
        yield target
        if not state.is_file() and (target / PARTIAL_PARSE).is_file():
            (target / PARTIAL_PARSE).replace(state)
    except BaseException:
        for path in target.iterdir():
            if path.is_dir():
                shutil.rmtree(path)
            elif path.name != DBT_LOG:
                path.unlink()
        raise
    shutil.rmtree(target, ignore_errors=True)


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
            prepared = DbtProject(project_dir=project_dir, target_path=target)
            (staging / PARTIAL_PARSE).replace(staging / parse_state(prepared).name)
            staging.rename(target)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        _remove_older_parses(target)


def _remove_older_parses(current: Path) -> None:
    """Parses of earlier versions of the project: nothing loads them again (a run worker computes
    the key from the files as they are now). Lock files stay: another process may be waiting on one."""
    for path in current.parent.iterdir():
        if path.is_dir() and path.name not in (current.name, "invocations"):
            shutil.rmtree(path, ignore_errors=True)


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
