"""Shared by the marts and lineage tests: the dbt project prepared as the code server prepares it."""

from __future__ import annotations

import functools
import json
from pathlib import Path

from marts.project import flights_project


@functools.cache
def prepare_manifest() -> Path:
    """The manifest for the project's current inputs, parsed unless an earlier session already did."""
    manifest = flights_project().manifest_path
    assert manifest.is_file(), f"no manifest at {manifest} after preparing the project"
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
