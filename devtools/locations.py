"""The code locations of this workspace, discovered from the members' pyproject files.

A member is a code location when its pyproject has a `[tool.platform.location]` table:

    [tool.platform.location]
    short-name = "marts"
    port = 4001
    writes = ["staging", "marts"]  # warehouse schemas its role creates tables in
    reads = ["raw"]                # warehouse schemas its role may read

That table is the one source of truth for the location's name, port and warehouse grants: the
deployment derives from it (workspace.yaml, the init script's roles) and tests check the rest.
"""

from __future__ import annotations

import tomllib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path


class UnknownLocation(ValueError):
    pass


@dataclass(frozen=True)
class Location:
    name: str  # import name = member directory = Dagster location_name, e.g. ingest_raw
    distribution: str  # e.g. ingest-raw
    short_name: str  # e.g. ingest
    port: int  # gRPC port of its code server
    member_dir: Path
    writes: tuple[str, ...] = ()  # warehouse schemas it creates tables in
    reads: tuple[str, ...] = ()  # warehouse schemas it reads

    @property
    def module(self) -> str:
        return f"{self.name}.definitions"


def discover(root: Path) -> list[Location]:
    """Every member under `root/src` that declares itself a code location, sorted by port."""
    found = []
    for pyproject in sorted(root.glob("src/*/pyproject.toml")):
        data = tomllib.loads(pyproject.read_text())
        table = data.get("tool", {}).get("platform", {}).get("location")
        if table is None:
            continue
        member_dir = pyproject.parent
        found.append(
            Location(
                name=member_dir.name,
                distribution=data["project"]["name"],
                short_name=table["short-name"],
                port=int(table["port"]),
                member_dir=member_dir,
                writes=tuple(table.get("writes", ())),
                reads=tuple(table.get("reads", ())),
            )
        )
    return sorted(found, key=lambda location: location.port)


def select(locations: Sequence[Location], names: Iterable[str]) -> list[Location]:
    """The locations named by short or full name, in workspace order; all of them when none is named."""
    names = list(names)
    if not names:
        return list(locations)
    by_name = {alias: location for location in locations for alias in (location.short_name, location.name)}
    unknown = [name for name in names if name not in by_name]
    if unknown:
        valid = ", ".join(sorted(by_name))
        raise UnknownLocation(f"unknown location {', '.join(map(repr, unknown))}; valid names: {valid}")
    chosen = {by_name[name] for name in names}
    return [location for location in locations if location in chosen]


def warehouse_schemas(locations: Iterable[Location]) -> list[str]:
    """Every schema some location writes, in port order: what a warehouse must have."""
    return list(dict.fromkeys(schema for location in locations for schema in location.writes))


def init_spec(locations: Iterable[Location]) -> str:
    """PLATFORM_LOCATIONS for deploy/postgres/init-platform.sh: `name:writes:reads` per location,
    schemas comma-separated, e.g. `ingest_raw:raw: marts:staging,marts:raw`."""
    return " ".join(
        f"{location.name}:{','.join(location.writes)}:{','.join(location.reads)}" for location in locations
    )
