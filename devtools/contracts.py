"""Contracts across locations: what a dbt project expects of the tables another location loads.

A dbt source keyed to another location's asset (`meta.dagster.asset_key`) names columns, optionally
with a `data_type`; the models reading it cast its columns (`cast(col as type)`, `col::type`). Both are
checked against the producing asset's declared column schema (`dagster/column_schema`, which ingest_raw
derives from its source declarations), so a column renamed, dropped or retyped on one side fails in
check-defs and the suite, naming both files, before any run. Read from the dbt files themselves: no dbt
parse, no warehouse."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import yaml

from devtools.locations import Location

#: Spellings Postgres accepts for the types a source may be declared with.
_ALIASES = {
    "int": "integer",
    "int4": "integer",
    "int2": "smallint",
    "int8": "bigint",
    "float8": "double precision",
    "float": "double precision",
    "decimal": "numeric",
    "bool": "boolean",
    "varchar": "text",
    "character varying": "text",
    "timestamp with time zone": "timestamptz",
    "timestamp without time zone": "timestamp",
}
_SOURCE_CALL = re.compile(r"source\(\s*['\"](\w+)['\"]\s*,\s*['\"](\w+)['\"]\s*\)")
_CASTS = (
    re.compile(r"\bcast\(\s*(\w+)\s+as\s+([a-z][a-z0-9 ]*?)\s*(?:\(\s*[\d, ]+\))?\s*\)", re.IGNORECASE),
    re.compile(r"(?<![\w.)'])(\w+)::([a-z][a-z0-9]*(?: precision)?)", re.IGNORECASE),
)


def normalize(type_: str) -> str:
    type_ = " ".join(type_.lower().split())
    return _ALIASES.get(type_, type_)


@dataclass(frozen=True)
class Expectation:
    """One column a consumer relies on: `type_` None when it only needs the column to exist."""

    asset_key: str  # e.g. raw/weather
    column: str
    type_: str | None
    where: str  # file (relative to the repository) and what, e.g. "models/staging/stg_weather.sql: cast"


def expectations(location: Location, root: Path) -> list[Expectation]:
    """What every dbt project inside `location` expects of the sources it reads."""
    found = []
    for project_file in sorted(location.member_dir.rglob("dbt_project.yml")):
        project = project_file.parent
        if any(part in {"target", "dbt_packages", "node_modules"} for part in project.parts):
            continue
        keys: dict[tuple[str, str], str] = {}
        for properties in sorted(project.glob("models/**/*.yml")):
            where = properties.relative_to(root)
            for source in (yaml.safe_load(properties.read_text()) or {}).get("sources", []):
                for table in source.get("tables", []):
                    meta = table.get("meta") or table.get("config", {}).get("meta") or {}
                    key = meta.get("dagster", {}).get("asset_key")
                    if not key:
                        continue
                    asset_key = "/".join(key)
                    keys[(source["name"], table["name"])] = asset_key
                    for column in table.get("columns", []):
                        declared = column.get("data_type")
                        found.append(
                            Expectation(
                                asset_key,
                                column["name"],
                                normalize(declared) if declared else None,
                                f"{where}: source {source['name']}.{table['name']}",
                            )
                        )
        for model in sorted(project.glob("models/**/*.sql")):
            sql = model.read_text()
            read = {keys[call] for call in _SOURCE_CALL.findall(sql) if call in keys}
            if len(read) != 1:  # casts of a model joining several sources cannot be attributed
                continue
            (asset_key,) = read
            for pattern in _CASTS:
                for column, type_ in pattern.findall(sql):
                    found.append(
                        Expectation(
                            asset_key, column, normalize(type_), f"{model.relative_to(root)}: cast {column}"
                        )
                    )
    return found


def violations(reports: dict[str, dict], locations: list[Location], root: Path) -> list[str]:
    """Each expectation a producing location's declared columns do not meet, naming both sides.
    `reports` maps location name to its definitions (devtools.load_location.definitions)."""
    producers = {
        key: (name, asset["columns"])
        for name, definitions in reports.items()
        for key, asset in definitions["assets"].items()
        if asset.get("columns") is not None
    }
    problems = []
    for location in locations:
        for expected in expectations(location, root):
            if expected.asset_key not in producers:
                continue  # no declared schema to hold it to (or the producer failed to load)
            producer, columns = producers[expected.asset_key]
            declared = {name: normalize(type_) for name, type_ in columns.items()}
            side = f"{location.name} ({expected.where})"
            other = f"{producer}'s declaration of {expected.asset_key}"
            if expected.column not in declared:
                problems.append(
                    f"{side} reads column {expected.column!r}, which {other} does not have"
                    f" (it declares: {', '.join(declared)})"
                )
            elif expected.type_ and expected.type_ != declared[expected.column]:
                problems.append(
                    f"{side} expects {expected.column!r} as {expected.type_}, but {other} declares it"
                    f" {declared[expected.column]}"
                )
    return sorted(set(problems))
