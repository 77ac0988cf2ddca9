"""Partitioned loads, data versions and the row-count check, on small generated inputs."""

from __future__ import annotations

import dagster as dg

from ingest_raw.errors import EXIT_PERMANENT
from tests.ingest.ingest_helpers import (
    at,
    check_results,
    data_version,
    events_of,
    failure_message,
    fingerprint,
    flights_csv,
    materialize,
    run_source,
    weather_csv,
    weather_rows,
)

JANUARY, FEBRUARY, MARCH, APRIL = (f" where month = {month}" for month in (1, 2, 3, 4))


def test_a_partition_load_replaces_that_month_only_and_reruns_give_the_same_rows(fresh_warehouse, tmp_path):
    first, second = tmp_path / "first.csv", tmp_path / "second.csv"
    first.write_bytes(flights_csv({1: 5, 2: 5, 3: 5}))
    second.write_bytes(flights_csv({1: 7, 2: 1, 3: 2}, first_flight=5000))
    assert run_source(fresh_warehouse, "flights", "--input", str(first)).returncode == 0
    february, march = (
        fingerprint(fresh_warehouse, "flights", FEBRUARY),
        fingerprint(fresh_warehouse, "flights", MARCH),
    )

    for _ in range(2):
        result = materialize(at("flights", second), fresh_warehouse, partition_key="2013-01-01")
        assert result.success
        january = fingerprint(fresh_warehouse, "flights", JANUARY)
        assert january[0] == 7
        assert fingerprint(fresh_warehouse, "flights", FEBRUARY) == february
        assert fingerprint(fresh_warehouse, "flights", MARCH) == march
    assert fingerprint(fresh_warehouse, "flights", JANUARY) == january
    with_where = run_source(fresh_warehouse, "flights", "--input", str(second), "--partition", "2013-01-01")
    assert with_where.returncode == 0, with_where.stderr
    assert "partition 2013-01-01: 7 rows (previously 7)" in with_where.stderr
    assert fingerprint(fresh_warehouse, "flights", JANUARY) == january


def test_a_backfill_range_is_one_step_reading_the_input_once(fresh_warehouse, tmp_path):
    """A backfill's single run of February..March: both months replaced in one pass over the input,
    one materialization per month, January and April untouched."""
    first, second = tmp_path / "first.csv", tmp_path / "second.csv"
    first.write_bytes(flights_csv({1: 5, 2: 5, 3: 5, 4: 5}))
    second.write_bytes(flights_csv({1: 9, 2: 3, 3: 4, 4: 9}, first_flight=5000))
    assert run_source(fresh_warehouse, "flights", "--input", str(first)).returncode == 0
    january = fingerprint(fresh_warehouse, "flights", JANUARY)
    april = fingerprint(fresh_warehouse, "flights", APRIL)

    result = materialize(at("flights", second), fresh_warehouse, partition_range=("2013-02-01", "2013-03-01"))

    assert result.success
    assert len(events_of(result, "STEP_START")) == 1
    materializations = result.asset_materializations_for_node("raw__flights")
    assert [m.partition for m in materializations] == ["2013-02-01", "2013-03-01"]
    metadata = materializations[0].metadata
    assert metadata["partition_rows"].value == {"2013-02-01": 3, "2013-03-01": 4}
    assert metadata["rows_loaded"].value == 7
    assert metadata["input_lines"].value == 1 + 9 + 3 + 4 + 9  # every line read once, for both months
    assert fingerprint(fresh_warehouse, "flights", FEBRUARY)[0] == 3
    assert fingerprint(fresh_warehouse, "flights", MARCH)[0] == 4
    assert fingerprint(fresh_warehouse, "flights", JANUARY) == january
    assert fingerprint(fresh_warehouse, "flights", APRIL) == april


def test_a_range_with_a_month_missing_from_the_input_fails_and_keeps_every_month(fresh_warehouse, tmp_path):
    first, second = tmp_path / "first.csv", tmp_path / "second.csv"
    first.write_bytes(flights_csv({1: 5, 2: 5, 3: 5}))
    second.write_bytes(flights_csv({1: 2, 3: 2}, first_flight=5000))
    assert run_source(fresh_warehouse, "flights", "--input", str(first)).returncode == 0
    before = fingerprint(fresh_warehouse, "flights")

    result = run_source(
        fresh_warehouse, "flights", "--input", str(second), *("--partition", "2013-01-01"),
        *("--partition", "2013-02-01"), *("--partition", "2013-03-01"),
    )  # fmt: skip

    assert result.returncode == EXIT_PERMANENT
    assert "no rows in partition 2013-02-01; expected at least one" in result.stderr
    assert fingerprint(fresh_warehouse, "flights") == before


def test_a_partition_asked_for_twice_is_refused(fresh_warehouse, tmp_path):
    path = tmp_path / "flights.csv"
    path.write_bytes(flights_csv({1: 3}))
    twice = ("--partition", "2013-01-01") * 2
    result = run_source(fresh_warehouse, "flights", "--input", str(path), *twice)
    assert result.returncode == EXIT_PERMANENT
    assert "source 'flights': partition keys repeated: 2013-01-01 2013-01-01" in result.stderr


def test_a_month_missing_from_the_input_fails_and_keeps_the_table(fresh_warehouse, tmp_path):
    path = tmp_path / "flights.csv"
    path.write_bytes(flights_csv({1: 3}))
    assert run_source(fresh_warehouse, "flights", "--input", str(path)).returncode == 0
    before = fingerprint(fresh_warehouse, "flights")

    result = materialize(at("flights", path), fresh_warehouse, partition_key="2013-04-01")

    assert not result.success
    assert "no rows in partition 2013-04-01; expected at least one" in failure_message(result)
    assert fingerprint(fresh_warehouse, "flights") == before


def test_unchanged_input_keeps_its_data_version(fresh_warehouse, tmp_path):
    same, changed = tmp_path / "same.csv", tmp_path / "changed.csv"
    same.write_bytes(weather_csv(weather_rows(4)))
    changed.write_bytes(weather_csv(weather_rows(4, temp="40.1")))

    versions = [
        data_version(materialize(at("weather", path), fresh_warehouse), "raw__weather")
        for path in (same, same, changed)
    ]

    assert versions[0] == versions[1]
    assert versions[2] != versions[0]


def test_row_count_change_beyond_the_bound_warns_but_loads(fresh_warehouse, tmp_path):
    many, few = tmp_path / "many.csv", tmp_path / "few.csv"
    many.write_bytes(weather_csv(weather_rows(10)))
    few.write_bytes(weather_csv(weather_rows(2)))
    assert materialize(at("weather", many), fresh_warehouse).success

    result = materialize(at("weather", few), fresh_warehouse)

    assert result.success
    check = check_results(result)["row_count_change"]
    assert not check.passed
    assert check.severity == dg.AssetCheckSeverity.WARN
    assert check.metadata["relative_change"].value == -0.8
    assert check.metadata["previous_rows"].value == 10
    assert fingerprint(fresh_warehouse, "weather")[0] == 2


def test_a_partition_key_that_is_not_a_month_start_is_refused(fresh_warehouse, tmp_path):
    path = tmp_path / "flights.csv"
    path.write_bytes(flights_csv({1: 3}))
    result = run_source(fresh_warehouse, "flights", "--input", str(path), "--partition", "2013-01-15")
    assert result.returncode == EXIT_PERMANENT
    assert (
        "source 'flights': partition key '2013-01-15' is not a month start like 2013-01-01" in result.stderr
    )


def test_a_partition_key_outside_the_declared_months_is_refused(fresh_warehouse, tmp_path):
    """2013-13-01 or 2014-01-01 (flights declares 2013-01-01 to 2014-01-01) names no partition: a load of
    it would replace rows no partition holds."""
    path = tmp_path / "flights.csv"
    path.write_bytes(flights_csv({1: 3}))
    assert run_source(fresh_warehouse, "flights", "--input", str(path)).returncode == 0
    before = fingerprint(fresh_warehouse, "flights")
    for key, fragment in {
        "2013-13-01": "is not a month start like 2013-01-01",
        "2013-00-01": "is not a month start like 2013-01-01",
        "2014-01-01": "is outside the declared partitions, 2013-01-01 (included) to 2014-01-01 (excluded)",
        "2012-12-01": "is outside the declared partitions",
    }.items():
        result = run_source(fresh_warehouse, "flights", "--input", str(path), "--partition", key)
        assert result.returncode == EXIT_PERMANENT, (key, result.stderr)
        assert f"ingest error: source 'flights': partition key '{key}' {fragment}" in result.stderr
    assert fingerprint(fresh_warehouse, "flights") == before


def test_a_row_of_no_declared_month_fails_every_load_naming_its_line(fresh_warehouse, tmp_path):
    """A row with no month (NA), month 13 or a year past the declared end belongs to no partition: a
    partition load skipping it, as it skips the other months, would lose it without a word."""
    good = flights_csv({1: 3, 2: 3})
    assert (
        run_source(fresh_warehouse, "flights", "--input", _write(tmp_path, "good.csv", good)).returncode == 0
    )
    before = fingerprint(fresh_warehouse, "flights")
    row = good.decode().splitlines()[1].split(",")
    for name, (year, month, found) in {
        "no_month": ("2013", "NA", "year 2013, month NULL"),
        "no_year": ("NA", "2", "year NULL, month 2"),
        "month_13": ("2013", "13", "year 2013, month 13"),
        "past_the_end": ("2014", "1", "year 2014, month 1"),
    }.items():
        bad = ",".join([year, month, *row[2:10], "9999", *row[11:]])
        path = _write(tmp_path, f"{name}.csv", good + f"{bad}\n".encode())
        for partition in (["--partition", "2013-01-01"], ["--partition", "2013-02-01"], []):
            result = run_source(fresh_warehouse, "flights", "--input", path, *partition)
            assert result.returncode == EXIT_PERMANENT, (name, partition, result.stderr)
            assert (
                f"ingest error: source 'flights': {path} line 8: the row belongs to no partition ({found}); "
                "the source's partitions are the months 2013-01-01 (included) to 2014-01-01 (excluded)"
            ) in result.stderr, result.stderr
    assert fingerprint(fresh_warehouse, "flights") == before


def _write(folder, name: str, data: bytes) -> str:
    path = folder / name
    path.write_bytes(data)
    return str(path)
