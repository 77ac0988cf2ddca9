"""The code locations of this workspace, discovered from the members' pyproject files.

A member is a code location when its pyproject has a `[tool.platform.location]` table:

    [tool.platform.location]
    short-name = "ingest"
    port = 4000
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
