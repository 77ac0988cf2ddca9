"""The asset checks of a source, evaluated from the facts a load reports (rows loaded, previous rows,
rejected rows): programs report facts, the launcher turns them into check results, and this module is
the one place that says what each check means."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ingest_raw.declarations import SCHEMA, Source

#: The materialization metadata keys every load reports: the facts checks are evaluated from.
ROWS_LOADED = "rows_loaded"
PREVIOUS_ROWS = "previous_rows"
ROWS_REJECTED = "rows_rejected"


@dataclass(frozen=True)
class Check:
    name: str
    description: str
    #: A blocking check failing stops downstream assets; a non-blocking one warns.
    blocking: bool


CHECKS = (
    Check("not_empty", "The load brought at least one row.", blocking=True),
    Check(
        "primary_key_unique",
        "The declared primary key is unique and not null (enforced by the table).",
        blocking=True,
    ),
    Check(
        "row_count_change",
        "The row count moved by at most the declared bound since the previous load.",
        blocking=False,
    ),
)


def declared_checks(source: Source) -> list[Check]:
    return [check for check in CHECKS if check.name != "primary_key_unique" or source.primary_key]


@dataclass(frozen=True)
class Outcome:
    check: Check
    passed: bool
    metadata: dict[str, Any]


def evaluate(source: Source, facts: Mapping[str, Any]) -> list[Outcome]:
    """Every declared check of `source` on one load's facts."""
    rows, previous = int(facts[ROWS_LOADED]), int(facts[PREVIOUS_ROWS])
    change = (rows - previous) / previous if previous else None
    evaluations = {
        "not_empty": (rows > 0 or source.allow_empty, {"rows": rows}),
        "row_count_change": (
            change is None or abs(change) <= source.max_row_count_change,
            {
                "rows": rows,
                "previous_rows": previous,
                "relative_change": change,
                "max_relative_change": float(source.max_row_count_change),
            },
        ),
        "primary_key_unique": (
            True,  # the table's primary key constraint refused any duplicate during COPY
            {
                "primary_key": ", ".join(source.primary_key),
                "enforced_by": f"primary key constraint of {SCHEMA}.{source.table}",
            },
        ),
    }
    return [Outcome(check, *evaluations[check.name]) for check in declared_checks(source)]
