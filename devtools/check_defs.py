"""`uv run check-defs`: load every code location in its own process and report what it defines.

Each location is imported as its image imports it: the installed package, not its source folder
(a member missing from the root pyproject fails here as it would in dev-local). Exits non-zero when a
location fails to load (naming it, the exception and the file and line), when a contract between
locations is broken (devtools/contracts.py: a dbt source or staging cast against the ingest declaration
of the same table) or, with --max-import-ratio, when its import takes longer than that multiple of a
bare `import dagster`.

`--diff REF` also prints what changed in each location's definitions against the snapshot committed at
REF (src/<location>/definitions.snapshot.json, kept current by tests/test_definitions_snapshot.py), and
which other locations read a changed asset.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
from pathlib import Path

from devtools import contracts
from devtools.locations import Location, UnknownLocation, discover, select
from devtools.paths import workspace_root

LOAD_TIMEOUT_SECONDS = 300
COUNTS = ("assets", "checks", "jobs", "schedules", "sensors")


def _run_child(*arguments: str) -> dict:
    try:
        completed = subprocess.run(
            [sys.executable, "-m", "devtools.load_location", *arguments],
            capture_output=True,
            text=True,
            timeout=LOAD_TIMEOUT_SECONDS,
        )
    except subprocess.TimeoutExpired:
        return {"error": f"did not load within {LOAD_TIMEOUT_SECONDS} s", "where": arguments[0]}
    lines = completed.stdout.strip().splitlines()
    if completed.returncode != 0 or not lines:
        return {
            "error": f"loader exited {completed.returncode}: {completed.stderr.strip()[-2000:]}",
            "where": "?",
        }
    return json.loads(lines[-1])


SNAPSHOT = "definitions.snapshot.json"
#: How to rewrite every snapshot after an intended change (a new source, model, check, schedule...).
SNAPSHOT_UPDATE = "uv run pytest tests/test_definitions_snapshot.py --snapshot-update"


def snapshot_path(location: Location) -> Path:
    return location.member_dir / SNAPSHOT


def render_snapshot(definitions: dict) -> str:
    return json.dumps(definitions, indent=2, sort_keys=True) + "\n"


def snapshot_at(ref: str, location: Location, root: Path) -> dict | None:
    """The location's snapshot as committed at git `ref`; None where it has none (a new location)."""
    path = snapshot_path(location).relative_to(root).as_posix()
    shown = subprocess.run(["git", "show", f"{ref}:{path}"], cwd=root, capture_output=True, text=True)
    if shown.returncode != 0:
        verify = subprocess.run(["git", "rev-parse", "--verify", f"{ref}^{{commit}}"], cwd=root)
        if verify.returncode != 0:
            raise SystemExit(f"check-defs: --diff {ref}: not a commit in {root}")
        return None
    return json.loads(shown.stdout)


def _changes(before: dict, after: dict) -> tuple[list[str], set[str]]:
    """Lines describing each added, removed or changed definition, and the asset keys that changed."""
    lines, changed_assets = [], set()
    for section in ("assets", "checks", "jobs", "schedules", "sensors"):
        old, new = before.get(section, {}), after.get(section, {})
        for name in sorted(old.keys() | new.keys()):
            if name not in old:
                lines.append(f"  + {section[:-1]} {name}")
            elif name not in new:
                lines.append(f"  - {section[:-1]} {name}")
            elif old[name] != new[name]:
                fields = sorted(
                    field
                    for field in (
                        old[name].keys() | new[name].keys() if isinstance(old[name], dict) else [""]
                    )
                    if field == "" or old[name].get(field) != new[name].get(field)
                )
                lines.append(f"  ~ {section[:-1]} {name}" + (f": {', '.join(fields)}" if fields[0] else ""))
            else:
                continue
            if section == "assets":
                changed_assets.add(name)
    return lines, changed_assets


def diff(ref: str, reports: dict[str, dict], locations: list[Location], root: Path) -> list[str]:
    """What changed in each location's definitions since `ref`, and who reads a changed asset."""
    lines = [f"definitions changed since {ref}:"]
    changed: dict[str, set[str]] = {}
    for location in locations:
        report = reports[location.name]
        if "error" in report:
            lines.append(f"{location.name}: not compared (failed to load)")
            continue
        before = snapshot_at(ref, location, root)
        if before is None:
            lines.append(f"{location.name}: new since {ref} (no snapshot there)")
            before = {}
        location_lines, changed[location.name] = _changes(before, report["definitions"])
        lines.append(f"{location.name}: " + ("unchanged" if not location_lines else "changed"))
        lines += location_lines
    for producer, keys in changed.items():
        for location in locations:
            report = reports[location.name]
            if location.name == producer or "error" in report:
                continue
            readers = {
                key: sorted(
                    asset for asset, spec in report["definitions"]["assets"].items() if key in spec["deps"]
                )
                for key in sorted(keys)
                if key in report["definitions"]["reads"]
            }
            for key, assets in readers.items():
                lines.append(
                    f"blast radius: {producer} {key} is read by {location.name}: {', '.join(assets)}"
                )
    return lines


def load_report(location: Location) -> dict:
    """What the location defines (counts, keys, timings), or {"error": ..., "where": ...}."""
    return _run_child(location.module, location.distribution)


def _measure(locations: list[Location], runs: int) -> tuple[float, dict[str, dict]]:
    """Baseline and location reports, alternating round by round; seconds are medians over `runs`."""
    baselines, rounds = [], {location.name: [] for location in locations}
    for _ in range(runs):
        baselines.append(_run_child("--baseline")["import_seconds"])
        for location in locations:
            rounds[location.name].append(load_report(location))
    reports = {}
    for name, reports_of_location in rounds.items():
        failed = [report for report in reports_of_location if "error" in report]
        if failed:
            reports[name] = failed[0]
            continue
        reports[name] = reports_of_location[0] | {
            key: statistics.median(report[key] for report in reports_of_location)
            for key in ("import_seconds", "load_seconds")
        }
    return statistics.median(baselines), reports


def check(
    locations: list[Location],
    max_import_ratio: float | None,
    runs: int = 1,
    listing: bool = False,
    diff_ref: str | None = None,
) -> tuple[list[str], int, dict[str, dict]]:
    """Report lines, the number of failures and each location's report; with `listing`, each
    location's asset and check keys; with `diff_ref`, what changed since that git ref (`diff`)."""
    baseline, reports = _measure(locations, runs)
    header = f"{'location':<14}" + "".join(f"{name:>10}" for name in COUNTS)
    lines = [header + f"{'import s':>10}{'load s':>9}{'x dagster':>11}"]
    failures = 0
    for location in locations:
        report = reports[location.name]
        if "error" in report:
            failures += 1
            lines.append(f"{location.name:<14}FAILED  {report['error']}  ({report['where']})")
            if report.get("traceback"):
                lines.append("    " + report["traceback"].rstrip().replace("\n", "\n    "))
            continue
        ratio = report["import_seconds"] / baseline
        row = f"{location.name:<14}" + "".join(f"{report[name]:>10}" for name in COUNTS)
        row += f"{report['import_seconds']:>10.2f}{report['load_seconds']:>9.2f}{ratio:>10.2f}x"
        if max_import_ratio is not None and ratio > max_import_ratio:
            failures += 1
            row += f"  FAILED: import over {max_import_ratio:.2f}x import dagster"
        lines.append(row)
        if listing:
            lines += [f"    asset {key}" for key in report["asset_keys"]]
            lines += [f"    reads {key}" for key in report["read_keys"]]
            lines += [f"    check {key}" for key in report["check_keys"]]
    medians = f", medians of {runs} alternating runs" if runs > 1 else ""
    lines.append(f"baseline: import dagster {baseline:.2f} s (same run{medians})")
    for problem in contract_violations(reports, locations):
        failures += 1
        lines.append(f"CONTRACT BROKEN: {problem}")
    if diff_ref:
        lines += diff(diff_ref, reports, locations, workspace_root())
    return lines, failures, reports


def contract_violations(reports: dict[str, dict], locations: list[Location]) -> list[str]:
    """Contracts between the locations that loaded (a failed one is reported already)."""
    loaded = {name: report["definitions"] for name, report in reports.items() if "error" not in report}
    return contracts.violations(loaded, locations, workspace_root())


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="check-defs", description=__doc__.splitlines()[0])
    parser.add_argument("--only", action="append", default=[], metavar="NAME", help="a location (repeatable)")
    parser.add_argument(
        "--max-import-ratio",
        type=float,
        metavar="RATIO",
        help="fail a location whose definitions import takes longer than RATIO x `import dagster`",
    )
    parser.add_argument("--runs", type=int, default=1, help="measure N times, report medians (default 1)")
    parser.add_argument("--list", action="store_true", help="also print every asset key and check")
    parser.add_argument(
        "--diff",
        metavar="REF",
        help="also print what changed in each location's definitions since git REF (its committed"
        " snapshots) and which other locations read a changed asset",
    )
    args = parser.parse_args(argv)
    root = workspace_root()
    try:
        locations = select(discover(root), args.only)
    except UnknownLocation as error:
        parser.error(str(error))
    if not locations:
        parser.error(f"no code location found under {root / 'src'}")
    lines, failures, _ = check(locations, args.max_import_ratio, max(args.runs, 1), args.list, args.diff)
    print("\n".join(lines))
    if failures:
        print(f"check-defs: {failures} failure(s) (load, import time or contract)", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
