"""`uv run remove-location NAME`: remove a code location and every mention of it, all or nothing.

The inverse of new-location. Refuses while another location still reads it: a dbt source, an asset
dependency or a schema grant pointing at its assets or schemas.
"""

from __future__ import annotations

import argparse
import sys

from devtools import check_defs, location_files, workspace_commands
from devtools.locations import Location, UnknownLocation, discover, select
from devtools.paths import workspace_root
from devtools.staged_files import StagedFiles


class StillUsed(RuntimeError):
    pass


def readers(location: Location, others: list[Location]) -> list[str]:
    """What still points at `location`, one line each; loads every location (as check-defs does)."""
    reports = {other.name: check_defs.load_report(other) for other in [location, *others]}
    failed = [f"{name}: {report['error']}" for name, report in reports.items() if "error" in report]
    if failed:
        raise StillUsed("cannot tell who reads it, a location does not load:\n  " + "\n  ".join(failed))
    defined = set(reports[location.name]["asset_keys"])
    found = []
    for other in others:
        keys = sorted(defined & set(reports[other.name]["read_keys"]))
        if keys:
            found.append(f"{other.name} reads its assets {', '.join(keys)}")
        schemas = sorted(set(location.writes) & set(other.reads))
        if schemas:
            found.append(f"{other.name} reads its schema {', '.join(schemas)} (reads in its location table)")
    return found


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="remove-location", description=__doc__.splitlines()[0])
    parser.add_argument("name", help="the location's name or short name")
    parser.add_argument("--dry-run", action="store_true", help="print the plan and the diff, write nothing")
    args = parser.parse_args(argv)
    root = workspace_root()
    locations = discover(root)
    try:
        (location,) = select(locations, [args.name])
    except UnknownLocation as error:
        parser.error(str(error))
    others = [other for other in locations if other != location]
    try:
        found = readers(location, others)
    except StillUsed as error:
        sys.exit(f"remove-location: {error}")
    if found:
        sys.exit(f"remove-location: {location.name} is still read:\n  " + "\n  ".join(found))
    staged = StagedFiles(root)
    location_files.stage_remove(staged, location, others)
    print(f"remove-location: {location.name}")
    print("\n".join(staged.plan()))
    if args.dry_run:
        print(staged.diff(), end="")
        return
    try:
        with staged.applied(also_restore=("uv.lock",)):
            workspace_commands.lock_and_sync(root)
    except workspace_commands.CommandFailed as error:
        workspace_commands.sync_quietly(root)
        sys.exit(f"remove-location: {error}\nremove-location: nothing was changed (every file is as it was)")
    print(
        f"remove-location: {staged.written} files written; environments/{location.name}.env (yours) is kept"
    )
    print("next:")
    print("  uv run check-defs")
    print("  uv run pytest tests/deploy/test_deploy_static.py")


if __name__ == "__main__":
    main()
