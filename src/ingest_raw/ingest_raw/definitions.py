"""Code location ingest_raw: one asset per declared source (see ingest_raw.catalog)."""

from ingest_raw.catalog import SOURCES
from ingest_raw.factory import build_definitions

defs = build_definitions(SOURCES.values())
