"""A declared tolerance for rows with a value of the wrong type: skipped, counted and named, or the load
fails once there are more than declared. Runs the loader in-process on the real warehouse."""

from __future__ import annotations

from dataclasses import replace

import pytest

from ingest_raw.catalog import WEATHER
from ingest_raw.errors import PermanentLoadError
from ingest_raw.loader import load
from ingest_raw.reader import open_source
from tests.ingest.ingest_helpers import fingerprint, weather_csv, weather_rows

ROWS = weather_rows(6)
BAD = [ROWS[0], ROWS[1].replace(",39.02,", ",warm,"), *ROWS[2:4], ROWS[4].replace(",270,", ",west,"), ROWS[5]]


def test_rows_within_the_tolerance_are_skipped_and_reported(fresh_warehouse, tmp_path):
    path = tmp_path / "weather.csv"
    path.write_bytes(weather_csv(BAD))

    source = replace(WEATHER, max_rejected_rows=2)
    with open_source(source, str(path)) as stream:
        report = load(source, fresh_warehouse, stream)

    assert (report.rows_loaded, report.rows_rejected) == (4, 2)
    assert 'at line 3 for column "temp": "warm"' in report.rejections[0]
    assert 'at line 6 for column "wind_dir": "west"' in report.rejections[1]
    assert fingerprint(fresh_warehouse, "weather")[0] == 4


def test_more_rejections_than_declared_fail_the_load(loaded_weather, tmp_path):
    settings, before = loaded_weather
    path = tmp_path / "weather.csv"
    path.write_bytes(weather_csv(BAD))

    source = replace(WEATHER, max_rejected_rows=1)
    with (
        pytest.raises(PermanentLoadError, match=r"2 rows rejected, more than the 1 allowed; first: .*line 3"),
        open_source(source, str(path)) as stream,
    ):
        load(source, settings, stream)
    assert fingerprint(settings, "weather") == before
