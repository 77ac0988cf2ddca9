"""Shared by the marts and lineage tests: the dbt manifest prepared as an image build prepares it."""

from __future__ import annotations

import functools
import json
import os
import subprocess
import sys
from pathlib import Path

from marts.project import PROJECT_DIR, flights_project

PROJECT_FILE = PROJECT_DIR.parent / "project.py"
PREPARE_TIMEOUT_SECONDS = 180


def _newest_source_mtime() -> float:
    sources = [path for path in PROJECT_DIR.rglob("*") if path.is_file() and "target" not in path.parts]
    return max(path.stat().st_mtime for path in sources)


@functools.cache
def prepare_manifest() -> Path:
    """Run the image-build command (`dagster-dbt project prepare-and-package`) unless the manifest is
    newer than every project file; once per test session."""
    manifest = flights_project.manifest_path
    if manifest.is_file() and manifest.stat().st_mtime > _newest_source_mtime():
        return manifest
    command = [str(Path(sys.executable).with_name("dagster-dbt")), "project", "prepare-and-package"]
    result = subprocess.run(
        [*command, "--file", str(PROJECT_FILE)],
        env={key: value for key, value in os.environ.items() if not key.startswith("WAREHOUSE_")},
        capture_output=True,
        text=True,
        timeout=PREPARE_TIMEOUT_SECONDS,
    )
    assert result.returncode == 0, f"prepare-and-package failed:\n{result.stdout}\n{result.stderr}"
    assert manifest.is_file(), f"prepare-and-package left no manifest at {manifest}"
    return manifest


def manifest() -> dict:
    return json.loads(prepare_manifest().read_text())


def model_keys() -> set[str]:
    """`<schema>/<model>` of every model the dbt project declares: the keys the translator must give."""
    return {
        f"{node['config']['schema']}/{node['name']}"
        for node in manifest()["nodes"].values()
        if node["resource_type"] == "model"
    }


def source_keys() -> set[str]:
    """The asset key each dbt source points at (its `meta.dagster.asset_key`), e.g. `raw/flights`."""
    return {"/".join(source["meta"]["dagster"]["asset_key"]) for source in manifest()["sources"].values()}


def raw_tables() -> list[str]:
    """The ingest sources the dbt project reads, by name (the ingest CLI's argument)."""
    from ingest_raw.catalog import SOURCES

    keys = source_keys()
    return [name for name, source in SOURCES.items() if f"raw/{source.table}" in keys]
