"""`uv run new-location NAME`: add a code location in one command, all or nothing.

Writes the member (pyproject with its own dependencies and location table, definitions with one
example asset on the shared warehouse resource, a test, its env template), adds it to the root
pyproject, renders every deployment file again with it (render-deploy: Dockerfiles, bake, compose,
the run-container override, the Swarm stack, the Helm values, workspace.yaml, the init script's role,
grants and schema), then runs `uv lock`, `uv sync` and `check-defs --only NAME`. Any failure or
Ctrl-C puts every file and the environment back as they were.
"""

from __future__ import annotations

import argparse
import importlib.util
import keyword
import re
import sys
import time
from pathlib import Path

from devtools import check_defs, members, render_deploy, workspace_commands
from devtools.locations import Location, discover
from devtools.paths import workspace_root
from devtools.staged_files import StagedFiles

FIRST_PORT = 4000
RESERVED_PORTS = {3000: "the webserver", 3001: "the dev-local UI", 5432: "Postgres"}
#: Names a location cannot take: other members, compose services, top-level folders.
RESERVED_NAMES = {"shared", "platform", "postgres", "webserver", "daemon", "devtools", "tests", "bench"}
IDENTIFIER = re.compile(r"^[a-z][a-z0-9_]*$")


class Refused(ValueError):
    pass


def _holder(location: Location) -> str:
    return f"location {location.name} ({location.member_dir.name}/pyproject.toml)"


def validate(root: Path, name: str, short: str | None, port: int | None, reads: list[str]) -> Location:
    """The new location, or Refused saying what is wrong and who holds a taken name or port."""
    existing = discover(root)
    if not IDENTIFIER.match(name) or keyword.iskeyword(name) or name.endswith("_"):
        raise Refused(f"{name!r} is not a snake_case package name (lowercase letters, digits, underscores)")
    short = short or name
    if not IDENTIFIER.match(short):
        raise Refused(f"short name {short!r}: lowercase letters, digits and underscores only")
    for candidate in {name, short}:
        if candidate in RESERVED_NAMES:
            raise Refused(f"{candidate!r} is reserved (a member, a compose service or a folder of this repo)")
        for location in existing:
            if candidate in (location.name, location.short_name):
                raise Refused(f"name {candidate!r} is held by {_holder(location)}")
    if (root / "src" / name).exists():
        raise Refused(f"src/{name} already exists")
    if (root / f"Dockerfile.{short}").exists():
        raise Refused(f"Dockerfile.{short} already exists")
    found = importlib.util.find_spec(name)
    if found is not None:
        raise Refused(f"a module {name!r} is already installed ({found.origin}): pick another name")
    ports = {location.port: _holder(location) for location in existing} | RESERVED_PORTS
    if port is None:
        port = max([FIRST_PORT - 1, *(location.port for location in existing)]) + 1
    elif not 1024 <= port <= 65535:
        raise Refused(f"port {port} is outside 1024-65535")
    if port in ports:
        raise Refused(f"port {port} is held by {ports[port]}")
    writers = {schema: location for location in existing for schema in location.writes}
    if name in writers:
        raise Refused(f"schema {name!r} is written by {_holder(writers[name])}")
    unknown = [schema for schema in reads if schema not in writers]
    if unknown:
        raise Refused(f"--reads {', '.join(unknown)}: no location writes it; known: {', '.join(writers)}")
    return Location(
        name=name,
        distribution=name.replace("_", "-"),
        short_name=short,
        port=port,
        member_dir=root / "src" / name,
        writes=(name,),
        reads=tuple(reads),
        description=f"Code location {name}.",
    )


def stage_add(staged: StagedFiles, location: Location, existing: list[Location]) -> None:
    """The member's files, its root pyproject entries and every deployment file rendered with it."""
    member = f"src/{location.name}"
    staged.write(f"{member}/pyproject.toml", members.member_pyproject(location))
    staged.write(f"{member}/{location.name}/__init__.py", "")
    staged.write(f"{member}/{location.name}/definitions.py", members.member_definitions(location))
    staged.write(f"tests/test_{location.name}.py", members.member_test(location))
    staged.write(f"environments/{location.name}.env.template", members.env_template(location))
    staged.edit("pyproject.toml", lambda text: members.root_pyproject_add(text, location))
    stage_rendered(staged, [*existing, location])


def stage_rendered(staged: StagedFiles, locations: list[Location]) -> None:
    """Every deployment file rendered for `locations`: written where it changes, a location
    Dockerfile no location renders any more deleted."""
    rendered = render_deploy.render(staged.root, locations)
    for relative, text in rendered.items():
        if not staged.exists(relative) or staged.read(relative) != text:
            staged.write(relative, text)
    for relative in render_deploy.stale(staged.root, rendered):
        staged.delete(relative)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="new-location", description=__doc__.splitlines()[0])
    parser.add_argument("name", help="snake_case package name, e.g. reports (distribution: kebab-case)")
    parser.add_argument("--short", help="short name for Dockerfile.<short> and --only (default: NAME)")
    parser.add_argument("--port", type=int, help="gRPC port (default: the next after the highest in use)")
    parser.add_argument(
        "--reads",
        action="append",
        default=[],
        metavar="SCHEMA",
        help="a warehouse schema it reads (repeatable)",
    )
    parser.add_argument("--dry-run", action="store_true", help="print the plan and the diff, write nothing")
    args = parser.parse_args(argv)
    root = workspace_root()
    try:
        location = validate(root, args.name, args.short, args.port, args.reads)
    except Refused as error:
        sys.exit(f"new-location: {error}")
    staged = StagedFiles(root)
    try:
        stage_add(staged, location, discover(root))
    except render_deploy.PlatformTableError as error:
        sys.exit(f"new-location: {error}\nnew-location: nothing was changed")
    print(f"new-location: {location.name} (short {location.short_name}, port {location.port})")
    print("\n".join([*staged.plan(), workspace_commands.LOCK_PLAN]))
    if args.dry_run:
        print(staged.diff(), end="")
        return
    started = time.monotonic()
    try:
        with staged.applied(also_restore=("uv.lock",)):
            workspace_commands.lock_and_sync(root)
            lines, failures, reports = check_defs.check([location], None)
            print("\n".join(lines))
            if failures:
                raise workspace_commands.CommandFailed(f"check-defs --only {location.name} failed (above)")
            snapshot = check_defs.snapshot_path(location)
            snapshot.write_text(check_defs.render_snapshot(reports[location.name]["definitions"]))
            print(f"create {snapshot.relative_to(root)} (its definitions as reviewed data)")
    except (workspace_commands.CommandFailed, KeyboardInterrupt) as error:
        reason = "interrupted" if isinstance(error, KeyboardInterrupt) else str(error)
        workspace_commands.restore_environment(root, "new-location")
        sys.exit(f"new-location: {reason}\nnew-location: nothing was changed (every file is as it was)")
    seconds = time.monotonic() - started
    print(f"new-location: {staged.written + 1} files written, check-defs green in {seconds:.1f} s")
    print("next:")
    print(f"  uv run pytest tests/test_{location.name}.py")
    print(f"  uv run dev-local --only {location.short_name}")


if __name__ == "__main__":
    main()
