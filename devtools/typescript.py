"""The TypeScript source programs' project (src/ingest_raw/typescript): `npm ci` installs it from its
lock, `tsc` builds dist/. `prepare()` does only what changed since the last time, under a file lock so
concurrent callers (dev-local, pytest sessions and their xdist workers) never install or compile over
each other; `python -m devtools.typescript` forces both. Tests: tests/conftest.py."""

from __future__ import annotations

import contextlib
import fcntl
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

PROJECT = Path(__file__).resolve().parents[1] / "src" / "ingest_raw" / "typescript"
LOCK = PROJECT / ".build.lock"  # in .gitignore


class TypeScriptNotInstalled(RuntimeError):
    pass


def node() -> str | None:
    return shutil.which("node")


@contextlib.contextmanager
def _locked() -> Iterator[None]:
    with LOCK.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def install(log: Path | None = None) -> None:
    """`npm ci`; its notices go to `log` when given (appended), else to this terminal."""
    if shutil.which("npm") is None:
        raise TypeScriptNotInstalled(f"{PROJECT} needs npm on PATH (Node 18+) to install its packages")
    with open(log, "a") if log else contextlib.nullcontext() as output:
        done = subprocess.run(
            ["npm", "ci", "--no-audit", "--no-fund"],
            cwd=PROJECT,
            stdout=output,
            stderr=output and subprocess.STDOUT,
            timeout=600,
        )
    if done.returncode != 0:
        where = f"; its output is in {log}" if log else ""
        raise TypeScriptNotInstalled(f"npm ci failed in {PROJECT} (exit {done.returncode}){where}")


def compile_sources() -> None:
    """Compile src/ to dist/ with the project's own tsc."""
    tsc = PROJECT / "node_modules" / "typescript" / "bin" / "tsc"
    done = subprocess.run(
        [node() or "node", str(tsc), "-p", "tsconfig.json"],
        cwd=PROJECT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    if done.returncode != 0:
        raise RuntimeError(f"tsc failed in {PROJECT}:\n{done.stdout}{done.stderr}")


def prepare(log: Path | None = None) -> str:
    """Install when the lock changed since the last install, build when a source is newer than dist/;
    says what it did, or why the TypeScript sources cannot run here. npm's output goes to `log`."""
    if node() is None or shutil.which("npm") is None:
        return "no node/npm on PATH: the TypeScript sources will fail until Node 18+ is installed"
    with _locked():
        installed = PROJECT / "node_modules" / ".package-lock.json"
        if not installed.is_file() or _newest(PROJECT / "package-lock.json") > installed.stat().st_mtime:
            install(log)
        built = PROJECT / "dist"
        if not built.is_dir() or _newest(PROJECT / "src", PROJECT / "tsconfig.json") > _newest(built):
            compile_sources()
            return "TypeScript sources built"
    return "TypeScript sources up to date"


def build() -> Path:
    """The project installed and compiled (only what changed); returns its folder."""
    if node() is None:
        raise TypeScriptNotInstalled(f"{PROJECT} needs node on PATH (Node 18+)")
    prepare()
    return PROJECT


def _newest(*paths: Path) -> float:
    files = [file for path in paths for file in ([path] if path.is_file() else path.rglob("*"))]
    return max((file.stat().st_mtime for file in files if file.is_file()), default=0.0)


if __name__ == "__main__":
    with _locked():
        install()
        compile_sources()
