"""Every location's definitions as reviewed data: asset keys, deps (cross-location ones included),
groups, owners, kinds, partitions, automation conditions, declared columns, checks and their blocking
flag, freshness, jobs, schedules and sensors, one committed JSON per location
(src/<location>/definitions.snapshot.json). A change to any definition is a diff in the repository.

After an intended change, rewrite every snapshot with
    uv run pytest tests/test_definitions_snapshot.py --snapshot-update
and commit it with the change (on a merge conflict in a snapshot, take either side and run it again).

Also holds the contracts between locations (devtools/contracts.py) over the same loaded definitions."""

from __future__ import annotations

import copy
import difflib

import pytest

from devtools.check_defs import (
    SNAPSHOT_UPDATE,
    contract_violations,
    load_report,
    render_snapshot,
    snapshot_path,
)
from devtools.contracts import expectations
from devtools.locations import discover
from devtools.paths import workspace_root

ROOT = workspace_root()
LOCATIONS = discover(ROOT)


@pytest.fixture(scope="module")
def reports() -> dict[str, dict]:
    """Each location loaded as check-defs loads it: its own process, the installed package."""
    return {location.name: load_report(location) for location in LOCATIONS}


@pytest.mark.parametrize("location", LOCATIONS, ids=lambda location: location.name)
def test_definitions_match_the_committed_snapshot(location, reports, request):
    report = reports[location.name]
    assert "error" not in report, f"{location.name} failed to load: {report['error']} ({report['where']})"
    current = render_snapshot(report["definitions"])
    path = snapshot_path(location)
    if request.config.getoption("--snapshot-update"):
        path.write_text(current)
        return
    assert path.is_file(), f"{location.name} has no definitions snapshot: run `{SNAPSHOT_UPDATE}`"
    committed = path.read_text()
    if committed != current:
        changes = "".join(
            difflib.unified_diff(
                committed.splitlines(keepends=True),
                current.splitlines(keepends=True),
                str(path.relative_to(ROOT)),
                "loaded now",
            )
        )
        pytest.fail(
            f"{location.name}'s definitions differ from its snapshot; if intended, run `{SNAPSHOT_UPDATE}`"
            f" and commit the snapshot:\n{changes}"
        )


def test_every_dbt_source_meets_the_declaration_of_the_table_it_reads(reports):
    assert contract_violations(reports, LOCATIONS) == []


def _a_consumed_column(reports) -> tuple[str, str, str, dict]:
    """Some column a location expects, with a type, of an asset another location declares."""
    for location in LOCATIONS:
        for expected in expectations(location, ROOT):
            for producer, report in reports.items():
                asset = report["definitions"]["assets"].get(expected.asset_key)
                if expected.type_ and asset and (asset.get("columns") or {}).get(expected.column):
                    return producer, expected.asset_key, expected.column, expected
    pytest.skip("no location reads a typed column of another location")


def test_a_renamed_column_breaks_the_contract_naming_both_sides(reports):
    producer, key, column, expected = _a_consumed_column(reports)
    renamed = copy.deepcopy(reports)
    columns = renamed[producer]["definitions"]["assets"][key]["columns"]
    columns[column + "_renamed"] = columns.pop(column)
    problems = contract_violations(renamed, LOCATIONS)
    assert any(
        column in problem
        and expected.where.split(":")[0] in problem
        and f"{producer}'s declaration of {key}" in problem
        for problem in problems
    ), problems


def test_a_retyped_column_breaks_the_contract_naming_both_sides(reports):
    producer, key, column, expected = _a_consumed_column(reports)
    retyped = copy.deepcopy(reports)
    retyped[producer]["definitions"]["assets"][key]["columns"][column] = (
        "text" if expected.type_ != "text" else "integer"
    )
    problems = contract_violations(retyped, LOCATIONS)
    assert any(
        f"expects {column!r} as {expected.type_}" in problem and expected.where.split(":")[0] in problem
        for problem in problems
    ), problems
