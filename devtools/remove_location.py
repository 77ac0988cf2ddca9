"""`uv run remove-location NAME`: remove a code location and every mention of it, all or nothing.

The inverse of new-location: the member, its test and env template go, and every deployment file is
rendered again without it. Refuses while another location still reads it: a dbt source, an asset
dependency or a schema grant pointing at its assets or schemas.
"""

from __future__ import annotations

import argparse
import sys

from devtools import check_defs, members, workspace_commands
from devtools.locations import Location, UnknownLocation, discover, select
from devtools.new_location import stage_rendered
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


def stage_remove(staged: StagedFiles, location: Location, remaining: list[Location]) -> None:
    """The inverse of new-location's staging: the member folder, its files, and every deployment
    file rendered without it."""
    staged.remove_dir(f"src/{location.name}")
    for relative in (f"tests/test_{location.name}.py", f"environments/{location.name}.env.template"):
        if staged.exists(relative):
            staged.delete(relative)
    staged.edit("pyproject.toml", lambda text: members.root_pyproject_remove(text, location))
    stage_rendered(staged, remaining)


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
    stage_remove(staged, location, others)
    print(f"remove-location: {location.name}")
    print("\n".join([*staged.plan(), workspace_commands.LOCK_PLAN]))
    if args.dry_run:
        print(staged.diff(), end="")
        return
    try:
        with staged.applied(also_restore=("uv.lock",)):
            workspace_commands.lock_and_sync(root)
    except (workspace_commands.CommandFailed, KeyboardInterrupt) as error:
        reason = "interrupted" if isinstance(error, KeyboardInterrupt) else str(error)
        workspace_commands.restore_environment(root, "remove-location")
        sys.exit(f"remove-location: {reason}\nremove-location: nothing was changed (every file is as it was)")
    env_file = root / "environments" / f"{location.name}.env"
    kept = f"; {env_file.relative_to(root)} (yours) is kept" if env_file.exists() else ""
    print(f"remove-location: {staged.written} files written{kept}")
    print("next:")
    print("  uv run check-defs")
    print("  uv run pytest tests/deploy/test_deploy_static.py")


if __name__ == "__main__":
    main()
