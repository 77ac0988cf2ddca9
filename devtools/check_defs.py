"""`uv run check-defs`: load every code location in its own process and report what it defines.

Each location is imported as its image imports it: the installed package, not its source folder
(a member missing from the root pyproject fails here as it would in dev-local). Exits non-zero when a
location fails to load (naming it, the exception and the file and line) or, with --max-import-ratio,
when its import takes longer than that multiple of a bare `import dagster`.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys

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
    locations: list[Location], max_import_ratio: float | None, runs: int = 1, listing: bool = False
) -> tuple[list[str], int]:
    """Report lines and the number of failures; with `listing`, each location's asset and check keys."""
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
    return lines, failures


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
    args = parser.parse_args(argv)
    root = workspace_root()
    try:
        locations = select(discover(root), args.only)
    except UnknownLocation as error:
        parser.error(str(error))
    if not locations:
        parser.error(f"no code location found under {root / 'src'}")
    lines, failures = check(locations, args.max_import_ratio, max(args.runs, 1), args.list)
    print("\n".join(lines))
    if failures:
        print(f"check-defs: {failures} location(s) failed", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
