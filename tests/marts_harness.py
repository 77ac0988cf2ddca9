"""Shared by the marts and lineage tests: the dbt project prepared as the code server prepares it."""

from __future__ import annotations

import functools
from pathlib import Path

from marts.project import flights_project


@functools.cache
def prepare_manifest() -> Path:
    """The manifest for the project's current inputs, parsed unless an earlier session already did."""
    manifest = flights_project().manifest_path
    assert manifest.is_file(), f"no manifest at {manifest} after preparing the project"
    return manifest
