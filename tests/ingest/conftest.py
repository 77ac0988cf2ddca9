"""Fixtures of the ingest tests."""

from __future__ import annotations

import pytest

from tests.ingest.ingest_helpers import fingerprint, run_source, weather_csv, weather_rows


@pytest.fixture
def loaded_weather(fresh_warehouse, tmp_path):
    """raw.weather holding a good small load; returns (settings, its fingerprint)."""
    good = tmp_path / "good.csv"
    good.write_bytes(weather_csv(weather_rows(8, origin="JFK")))
    result = run_source(fresh_warehouse, "weather", "--input", str(good))
    assert result.returncode == 0, result.stderr
    before = fingerprint(fresh_warehouse, "weather")
    assert before[0] == 8
    return fresh_warehouse, before
