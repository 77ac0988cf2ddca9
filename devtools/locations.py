"""The code locations of this workspace, discovered from the members' pyproject files.

A member is a code location when its pyproject has a `[tool.platform.location]` table:

    [tool.platform.location]
    short-name = "marts"
    port = 4001
    writes = ["staging", "marts"]  # warehouse schemas its role creates tables in
    reads = ["raw"]                # warehouse schemas its role may read

    # Optional: what the location's image needs besides its Python package.
    [tool.platform.location.build]
    prepare = "marts.project"      # `python -m marts.project` at build time (e.g. the dbt manifest)
    writable = "var/marts-dbt"     # a folder under the venv the runtime user owns (dbt writes there)

    [tool.platform.location.node]  # a Node project in the member, built into the image (npm ci, tsc)
    project = "typescript"         # its folder in the member
    env = "INGEST_TYPESCRIPT_DIR"  # the variable the image sets to where it put the build
    files = ["data"]               # folders of the project copied into the image as they are

That table is the one source of truth for the location's name, port, grants and image: every
deployment file is rendered from it (`uv run render-deploy`, devtools/render_deploy.py).
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
    description: str = ""  # the member's [project] description (the image's label)
    prepare: str | None = None  # a module run with `python -m` when the image is built
    writable: str | None = None  # a folder under the image's venv its runtime user owns
    node_project: str | None = None  # a Node project folder in the member, built into the image
    node_env: str | None = None  # the variable naming where the image put that build
    node_files: tuple[str, ...] = ()  # folders of the Node project copied as they are
    run: tuple[tuple[str, str], ...] = ()  # its [tool.platform.location.run] keys: its runs' own size

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
                description=data["project"].get("description", ""),
                prepare=table.get("build", {}).get("prepare"),
                writable=table.get("build", {}).get("writable"),
                node_project=table.get("node", {}).get("project"),
                node_env=table.get("node", {}).get("env"),
                node_files=tuple(table.get("node", {}).get("files", ())),
                run=tuple(sorted(table.get("run", {}).items())),
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
