"""A bank of malformed inputs: each fails with a message naming the place and the problem, the run is
marked failed without retries, and raw.weather keeps its previous rows."""

from __future__ import annotations

import zipfile

import pytest

from ingest_raw.errors import EXIT_PERMANENT
from shared import postgres
from tests.ingest.ingest_helpers import (
    WEATHER_HEADER,
    at,
    events_of,
    failure_message,
    fingerprint,
    materialize,
    run_source,
    weather_csv,
    weather_rows,
)

GOOD = weather_rows(5)


def _replace_field(row: str, index: int, value: str) -> str:
    fields = row.split(",")
    fields[index] = value
    return ",".join(fields)


def _truncated_zip(tmp_path) -> bytes:
    archive = tmp_path / "whole.zip"
    with zipfile.ZipFile(archive, "w", compression=zipfile.ZIP_DEFLATED) as zipped:
        zipped.writestr("weather.csv", weather_csv(weather_rows(20)))
    data = archive.read_bytes()
    return data[: len(data) // 2]


# name -> (file name, content, fragments the error must contain)
CASES = {
    "missing_column": (
        "weather.csv",
        weather_csv(GOOD, header=WEATHER_HEADER.replace(",humid", "")),
        ["line 1 (header)", "missing column(s) humid"],
    ),
    "extra_column": (
        "weather.csv",
        weather_csv([row + ",1" for row in GOOD], header=WEATHER_HEADER + ",extra"),
        ["line 1 (header)", "unexpected column(s) extra"],
    ),
    "ragged_row": (
        "weather.csv",
        weather_csv([*GOOD[:2], GOOD[2].rsplit(",", 3)[0], *GOOD[3:]]),
        ["line 4", "missing data for column"],
    ),
    "non_numeric_value": (
        "weather.csv",
        weather_csv([GOOD[0], _replace_field(GOOD[1], 5, "warm"), *GOOD[2:]]),
        ["line 3, column temp", 'invalid input syntax for type double precision: "warm"', "expected double"],
    ),
    "bad_date": (
        "weather.csv",
        weather_csv([*GOOD[:3], _replace_field(GOOD[3], 14, "2013-02-30T06:00:00Z"), GOOD[4]]),
        ["line 5, column time_hour", "2013-02-30T06:00:00Z", "expected timestamptz"],
    ),
    "duplicate_primary_key": (
        "weather.csv",
        weather_csv([*GOOD, GOOD[1]]),
        ["line 7", "duplicate primary key", "(origin, time_hour)=(EWR, 2013-01-01 07:00:00+00)"],
    ),
    "null_primary_key": (
        "weather.csv",
        weather_csv([*GOOD, _replace_field(weather_rows(6)[5], 0, "NA")]),
        ["line 7", "primary key column origin is null"],
    ),
    "invalid_utf8": (
        "weather.csv",
        weather_csv(GOOD[:2]) + b"JFK" + b"\xff" + ("," + GOOD[2].split(",", 1)[1] + "\n").encode(),
        ["line 4", 'invalid byte sequence for encoding "UTF8": 0xff'],
    ),
    "primary_key_value_too_long": (  # Postgres: 54000 program_limit_exceeded, an OperationalError
        "weather.csv",
        weather_csv([GOOD[0], _replace_field(GOOD[1], 0, "X" * 3_000_000), *GOOD[2:]]),
        ["line 3: index row requires", "primary key (origin, time_hour) too long"],
    ),
    "clock_time": (
        "weather.csv",
        weather_csv([*GOOD[:2], _replace_field(GOOD[2], 14, "today"), *GOOD[3:]]),
        ["line 4, column time_hour: 'today' is the clock's date or time", "expected a date or time"],
    ),
    "empty_file": ("weather.csv", b"", ["is empty", "expected a header line"]),
    "header_only": ("weather.csv", weather_csv([]), ["no rows in the input"]),
    "truncated_zip": ("weather.csv.zip", None, ["weather.csv.zip is not a valid archive"]),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_malformed_input_fails_the_run_and_keeps_the_table(loaded_weather, tmp_path, case):
    settings, before = loaded_weather
    file_name, content, fragments = CASES[case]
    path = tmp_path / file_name
    path.write_bytes(_truncated_zip(tmp_path) if content is None else content)

    result = materialize(at("weather", path), settings)

    assert not result.success
    message = failure_message(result)
    assert "source 'weather'" in message or file_name in message
    for fragment in fragments:
        assert fragment in message, f"{fragment!r} not in {message!r}"
    assert not events_of(result, "STEP_UP_FOR_RETRY"), "a permanent failure must not be retried"
    assert not events_of(result, "ASSET_MATERIALIZATION")
    assert fingerprint(settings, "weather") == before


def test_standalone_failure_exits_permanent_with_the_message_on_stderr(loaded_weather, tmp_path):
    settings, before = loaded_weather
    path = tmp_path / "bad.csv"
    path.write_bytes(weather_csv([GOOD[0], _replace_field(GOOD[1], 2, "one")]))

    result = run_source(settings, "weather", "--input", str(path))

    assert result.returncode == EXIT_PERMANENT
    assert f"ingest error: source 'weather': {path} line 3, column month" in result.stderr
    assert "expected integer" in result.stderr
    assert fingerprint(settings, "weather") == before


def test_failed_first_load_creates_no_table(fresh_warehouse, tmp_path):
    path = tmp_path / "bad.csv"
    path.write_bytes(weather_csv([_replace_field(GOOD[0], 3, "x")]))
    assert run_source(fresh_warehouse, "weather", "--input", str(path)).returncode == EXIT_PERMANENT
    assert fingerprint(fresh_warehouse, "weather") == (0, None)


def test_a_table_that_drifted_from_its_declaration_is_refused(loaded_weather, tmp_path):
    settings, before = loaded_weather
    with postgres.connect(settings) as conn:
        conn.execute("alter table raw.weather drop constraint weather_pkey")
    path = tmp_path / "good.csv"
    path.write_bytes(weather_csv(weather_rows(3)))

    result = run_source(settings, "weather", "--input", str(path))

    assert result.returncode == EXIT_PERMANENT
    assert "raw.weather exists with columns (origin text, year integer" in result.stderr
    assert "and primary key (), which differ from the declaration" in result.stderr
    assert fingerprint(settings, "weather") == before


def test_an_empty_input_option_is_refused_not_read_as_the_declared_input(loaded_weather):
    """`--input "$UNSET"` must not load the declared input (the package's 26k rows) in its place."""
    settings, before = loaded_weather
    for empty in ("", " "):
        result = run_source(settings, "weather", "--input", empty)
        assert result.returncode == EXIT_PERMANENT, result.stderr
        assert "ingest error: source 'weather': --input is empty" in result.stderr, result.stderr
    assert fingerprint(settings, "weather") == before
