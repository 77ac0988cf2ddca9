"""Hostile inputs: a stray quote, endless records and values, oversized messages, and input-layer failures.
Time is shown by structure (bytes scanned, bytes read before failing), memory by the program's own peak
RSS on inputs streamed through a named pipe; no wall-clock assertion."""

from __future__ import annotations

import gzip
import itertools
import time
import zipfile

import pytest

from devtools import peak_memory
from ingest_raw.catalog import SOURCES
from ingest_raw.csvstream import Records, split_header
from ingest_raw.errors import EXIT_OUT_OF_MEMORY, EXIT_PERMANENT, MESSAGE_LIMIT
from ingest_raw.reader import CHUNK_SIZE
from shared import postgres
from tests.ingest.ingest_helpers import (
    PROGRAM_TIMEOUT,
    WEATHER_HEADER,
    at,
    failure_message,
    fifo_input,
    fingerprint,
    materialize,
    package_file,
    program_env,
    run_source,
    source_command,
    weather_csv,
    weather_rows,
)

MIB = 1 << 20


def _flights_csv() -> bytes:
    with zipfile.ZipFile(package_file("flights")) as archive:
        (member,) = archive.namelist()
        return archive.read(member)


def test_a_stray_quote_in_the_flights_file_fails_naming_where_it_opened(fresh_warehouse, tmp_path):
    """31 MB with one unbalanced quote at line 2: the whole input is one open field, refused at its end."""
    header, second, rest = _flights_csv().split(b"\n", 2)
    fields = second.split(b",")
    tailnum = SOURCES["flights"].column_names.index("tailnum")
    fields[tailnum] = b'"' + fields[tailnum]
    path = tmp_path / "flights.csv"
    path.write_bytes(b"\n".join([header, b",".join(fields), rest]))

    result = run_source(fresh_warehouse, "flights", "--partition", "2013-01-01", "--input", str(path))

    assert result.returncode == EXIT_PERMANENT, result.stderr
    assert f"source 'flights': {path} line 2, column tailnum: quoted field never closed" in result.stderr
    assert fingerprint(fresh_warehouse, "flights") == (0, None)


def test_a_quoted_field_of_100k_lines_loads_whole(fresh_warehouse, tmp_path):
    name = "".join(f"line {number}\n" for number in range(100_000))
    path = tmp_path / "airlines.csv"
    path.write_bytes(f'carrier,name\nAA,"{name}"\nUA,United\n'.encode())

    result = run_source(fresh_warehouse, "airlines", "--input", str(path))

    assert result.returncode == 0, result.stderr
    with postgres.connect(fresh_warehouse) as conn:
        loaded = conn.execute("select name from raw.airlines where carrier = 'AA'").fetchone()[0]
    assert loaded == name


@pytest.mark.parametrize("chunk", [4096, CHUNK_SIZE])
def test_the_record_scan_is_linear_in_the_input(chunk):
    """A 2 MB quoted field cut into many chunks, then many short quoted records: the quote-aware scan
    reads each byte a bounded number of times (the old splitter recounted from the start per newline)."""
    field = b"x" * 20 + b"\n"
    data = b'a,b\n1,"' + field * 100_000 + b'"\n' + b'2,"y"\n' * 100_000
    chunks = [data[i : i + chunk] for i in range(0, len(data), chunk)]
    fmt = SOURCES["airlines"].format
    header, rest = split_header(chunks, fmt, "t.csv", 64 * MIB)
    records = Records(rest, fmt, "t.csv", header.names, 64 * MIB)
    assert b"".join(records).count(b"\n") == data.count(b"\n") - 1
    assert records.scanned_bytes <= 3 * len(data)


def _endless(prefix: bytes, filler: bytes, total: int):
    yield prefix
    yield from itertools.repeat(filler, total // len(filler))


@pytest.mark.parametrize(
    ("prefix", "expected"),
    [
        (
            b"carrier,na",
            "line 1 (header): no line end within the first 8 MiB (the source's max_record_bytes)",
        ),
        (b"carrier,name\nAA,", "line 2: record longer than 8 MiB (the source's max_record_bytes)"),
        (
            b'carrier,name\nAA,"',
            "line 2: record longer than 8 MiB (the source's max_record_bytes); a quoted field",
        ),
    ],
    ids=["header", "record", "open_quote"],
)
def test_a_record_over_the_limit_fails_fast_in_bounded_memory(fresh_warehouse, tmp_path, prefix, expected):
    """256 MiB without a line end, streamed: refused after the 8 MiB limit plus a chunk, well under
    the memory the whole record would take."""
    limit = 8 * MIB
    with (
        fifo_input(tmp_path, _endless(prefix, b"m" * MIB, 256 * MIB)) as (path, written),
        path.open("rb") as pipe,
    ):
        measured = peak_memory.run(
            source_command("airlines", "--input", "-", "--max-record-bytes", str(limit)),
            program_env(fresh_warehouse),
            timeout=PROGRAM_TIMEOUT,
            stdin=pipe,
        )
    assert measured.returncode == EXIT_PERMANENT, measured.stderr
    assert f"ingest error: source 'airlines': standard input {expected}" in measured.stderr
    assert written[0] <= limit + 3 * CHUNK_SIZE
    assert measured.peak_rss_bytes < 100 * MIB, f"peak RSS {measured.peak_rss_bytes / MIB:.0f} MiB"


def test_running_out_of_memory_is_not_bad_data(fresh_warehouse, tmp_path):
    """Under a 512 MiB address-space cap, with a record limit above it: exit 71 saying so, never 65."""
    with (
        fifo_input(tmp_path, _endless(b"carrier,name\nAA,", b"m" * MIB, 2048 * MIB)) as (path, _),
        path.open("rb") as pipe,
    ):
        measured = peak_memory.run(
            source_command("airlines", "--input", "-", "--max-record-bytes", str(4096 * MIB)),
            program_env(fresh_warehouse),
            timeout=PROGRAM_TIMEOUT,
            address_space=512 * MIB,
            stdin=pipe,
        )
    assert measured.returncode == EXIT_OUT_OF_MEMORY, measured.stderr
    assert "ingest error: source 'airlines': standard input: ran out of memory" in measured.stderr


def test_a_huge_bad_value_gives_a_short_message(loaded_weather, tmp_path):
    settings, before = loaded_weather
    rows = weather_rows(3)
    fields = rows[1].split(",")
    fields[5] = "9" * 100 + "x" * 2_000_000
    path = tmp_path / "weather.csv"
    path.write_bytes(weather_csv([rows[0], ",".join(fields), rows[2]]))

    standalone = run_source(settings, "weather", "--input", str(path))
    dagster = failure_message(materialize(at("weather", path), settings))

    assert standalone.returncode == EXIT_PERMANENT
    assert "line 3, column temp: invalid input syntax for type double precision" in standalone.stderr
    assert "more characters not shown" in standalone.stderr
    assert len(standalone.stderr) < MESSAGE_LIMIT + 200
    assert "more characters not shown" in dagster
    assert len(dagster) < MESSAGE_LIMIT + 5000  # the failure's description plus Dagster's own wrapping
    assert fingerprint(settings, "weather") == before


def test_a_quote_inside_an_unquoted_field_is_refused_and_a_quoted_one_kept(fresh_warehouse, tmp_path):
    """COPY alone would load `Joe "Best" Air` as `Joe Best Air`: refused with its line and column; the
    same value quoted with doubled quotes loads verbatim."""
    bad = tmp_path / "bad.csv"
    bad.write_bytes(b'carrier,name\nUA,United\nJB,Joe "Best" Air\n')
    good = tmp_path / "good.csv"
    good.write_bytes(b'carrier,name\nUA,United\nJB,"Joe ""Best"" Air"\n')

    refused = run_source(fresh_warehouse, "airlines", "--input", str(bad))
    loaded = run_source(fresh_warehouse, "airlines", "--input", str(good))

    assert refused.returncode == EXIT_PERMANENT
    assert f"source 'airlines': {bad} line 3, column name: a quote inside an unquoted field" in refused.stderr
    assert loaded.returncode == 0, loaded.stderr
    with postgres.connect(fresh_warehouse) as conn:
        assert (
            conn.execute("select name from raw.airlines where carrier = 'JB'").fetchone()[0]
            == 'Joe "Best" Air'
        )


def _two_member_zip(path):
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("a.csv", weather_csv(weather_rows(2)))
        archive.writestr("b.csv", weather_csv(weather_rows(2)))


def _truncated_gzip(path):
    data = gzip.compress(weather_csv(weather_rows(500)))
    path.write_bytes(data[: len(data) // 2])


INPUT_FAILURES = {
    "missing_file": ("missing.csv", None, "no such file"),
    "directory": ("folder", lambda path: path.mkdir(), "is a directory, not a regular file"),
    "zip_with_two_members": (
        "two.csv.zip",
        _two_member_zip,
        "expected a zip holding one file, found a.csv, b.csv",
    ),
    "truncated_gzip": ("weather.csv.gz", _truncated_gzip, "not a valid archive"),
    "cr_only_line_endings": (
        "mac.csv",
        lambda path: path.write_bytes("\r".join([WEATHER_HEADER, *weather_rows(2)]).encode()),
        "lines end with a carriage return alone",
    ),
    "oversized_header": (
        "wide.csv",
        lambda path: path.write_bytes(b"x" * 5000),
        "line 1 (header): no line end within the first 4096 bytes",
    ),
}


@pytest.mark.parametrize("case", sorted(INPUT_FAILURES))
def test_input_layer_errors_name_the_source(loaded_weather, tmp_path, case):
    settings, before = loaded_weather
    name, make, fragment = INPUT_FAILURES[case]
    path = tmp_path / name
    if make:
        make(path)

    result = run_source(settings, "weather", "--input", str(path), "--max-record-bytes", "4096")

    assert result.returncode == EXIT_PERMANENT, result.stderr
    assert "ingest error: source 'weather': " in result.stderr
    assert str(path) in result.stderr and fragment in result.stderr, result.stderr
    assert "Traceback" not in result.stderr
    assert fingerprint(settings, "weather") == before


def test_a_header_of_a_million_columns_is_refused_in_seconds(loaded_weather, tmp_path):
    """The header check is linear: a million names (repeated or not) fail at once, not in hours."""
    settings, before = loaded_weather
    for name, header in {
        "distinct": ",".join(f"c{i}" for i in range(1_000_000)),
        "repeated": ",".join(["x"] * 1_000_000),
    }.items():
        path = tmp_path / f"{name}.csv"
        path.write_bytes(weather_csv(weather_rows(2), header=header))
        started = time.monotonic()
        result = run_source(settings, "weather", "--input", str(path))
        assert time.monotonic() - started < 30, name
        assert result.returncode == EXIT_PERMANENT, result.stderr
        assert f"{path} line 1 (header): missing column(s) origin" in result.stderr, result.stderr
        assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert fingerprint(settings, "weather") == before


def test_the_same_input_gives_the_same_rows_whatever_the_session_settings(fresh_warehouse, tmp_path):
    """A timestamp without a zone, a date written 01/02/2013 and a zone abbreviation are read the same
    way whatever the server's or the client's time zone, date style and abbreviations (PGTZ,
    PGDATESTYLE, PGOPTIONS): UTC, month first, Postgres's default abbreviations (IST is +02)."""
    rows = weather_rows(3)
    rows[0] = ",".join([*rows[0].split(",")[:-1], "2013-01-01 06:00:00"])
    rows[1] = ",".join([*rows[1].split(",")[:-1], "01/02/2013 07:00"])
    rows[2] = ",".join([*rows[2].split(",")[:-1], "2013-01-03 10:00 IST"])
    path = tmp_path / "zoneless.csv"
    path.write_bytes(weather_csv(rows))
    seen = set()
    for env in (
        {},
        {"PGTZ": "Asia/Tokyo", "PGDATESTYLE": "ISO, DMY"},
        {"PGTZ": "America/Los_Angeles", "PGOPTIONS": "-c timezone_abbreviations=India"},
    ):
        result = run_source(fresh_warehouse, "weather", "--input", str(path), **env)
        assert result.returncode == 0, result.stderr
        seen.add(fingerprint(fresh_warehouse, "weather"))
        with postgres.connect(fresh_warehouse) as conn:
            conn.execute("set timezone = 'UTC'")
            stamps = conn.execute("select time_hour::text from raw.weather order by 1").fetchall()
        assert stamps == [
            ("2013-01-01 06:00:00+00",),
            ("2013-01-02 07:00:00+00",),
            ("2013-01-03 08:00:00+00",),
        ], env
    assert len(seen) == 1
