"""The files of a location member that new-location writes and remove-location deletes (its pyproject,
definitions, test and env template) and its entries in the root pyproject, edited by structure
(tomlkit). Every deployment file is rendered from the location tables instead (render_deploy)."""

from __future__ import annotations

import re

import tomlkit

from devtools.locations import Location
from devtools.render_deploy import image_name


def root_pyproject_add(text: str, location: Location) -> str:
    document = tomlkit.parse(text)
    dependencies = document["project"]["dependencies"]
    if location.distribution not in dependencies:
        sources = document["tool"]["uv"]["sources"]
        members = [index for index, item in enumerate(dependencies) if item in sources]
        dependencies.insert(members[-1] + 1 if members else 0, location.distribution)
    document["tool"]["uv"]["sources"][location.distribution] = tomlkit.parse("s = { workspace = true }")["s"]
    first_party = document["tool"]["ruff"]["lint"]["isort"]["known-first-party"]
    if location.name not in first_party:
        first_party.insert(
            first_party.index("tests") if "tests" in first_party else len(first_party), location.name
        )
    return tomlkit.dumps(document)


def root_pyproject_remove(text: str, location: Location) -> str:
    document = tomlkit.parse(text)
    dependencies = document["project"]["dependencies"]
    if location.distribution in dependencies:
        dependencies.remove(location.distribution)
    document["tool"]["uv"]["sources"].pop(location.distribution, None)
    first_party = document["tool"]["ruff"]["lint"]["isort"]["known-first-party"]
    if location.name in first_party:
        first_party.remove(location.name)
    # tomlkit drops the blank line before the next table together with a table's last entry.
    return re.sub(r"([^\n])\n(\[)", r"\1\n\n\2", tomlkit.dumps(document))


def member_pyproject(location: Location) -> str:
    return f'''[project]
name = "{location.distribution}"
version = "0.1.0"
description = "{location.description}"
requires-python = ">=3.11,<3.14"
dependencies = [
    "shared",
]

[tool.uv.sources]
shared = {{ workspace = true }}

[tool.uv]
# uv rebuilds a non-editable install of this member only when a cache key changes (default: pyproject.toml).
cache-keys = [{{ file = "pyproject.toml" }}, {{ file = "**/*.py" }}]

[build-system]
requires = ["hatchling"]
build-backend = "hatchling.build"

[tool.hatch.build.targets.wheel]
packages = ["{location.name}"]

[tool.platform.location]
short-name = "{location.short_name}"
port = {location.port}
writes = {_toml_list(location.writes)}
reads = {_toml_list(location.reads)}
'''


def _toml_list(items: tuple[str, ...]) -> str:
    return "[" + ", ".join(f'"{item}"' for item in items) + "]"


def member_definitions(location: Location) -> str:
    schema = location.writes[0]
    return f'''"""Code location {location.name}: one example asset writing the warehouse schema `{schema}`."""

import dagster as dg

from shared.resources import PostgresWarehouse


@dg.asset(key=["{schema}", "example"], group_name="{schema}", kinds={{"postgres"}})
def example(warehouse: PostgresWarehouse) -> dg.MaterializeResult:
    """One row per run in {schema}.example, written as this location's own role: replace with real work."""
    with warehouse.connect() as conn:
        conn.execute("create table if not exists {schema}.example (run_at timestamptz not null)")
        conn.execute("insert into {schema}.example values (now())")
        (rows,) = conn.execute("select count(*) from {schema}.example").fetchone()
    return dg.MaterializeResult(metadata={{"dagster/row_count": rows}})


@dg.definitions
def defs() -> dg.Definitions:
    return dg.Definitions(assets=[example], resources={{"warehouse": PostgresWarehouse()}})
'''


def member_test(location: Location) -> str:
    schema = location.writes[0]
    return f'''"""Code location {location.name}: its example asset writes its schema on a real Postgres."""

import dagster as dg

from {location.name}.definitions import defs as load_definitions
from shared import postgres


def test_example_writes_one_row_per_run(fresh_warehouse, monkeypatch):
    for variable, value in fresh_warehouse.to_env().items():
        monkeypatch.setenv(variable, value)
    defs = load_definitions()
    for _ in range(2):
        assert dg.materialize(defs.assets, resources=defs.resources).success
    with postgres.connect(fresh_warehouse) as conn:
        assert conn.execute("select count(*) from {schema}.example").fetchone() == (2,)
'''


def env_template(location: Location) -> str:
    writes = ", ".join(location.writes)
    reads = f"; reads {', '.join(location.reads)}" if location.reads else ""
    image = image_name(location)
    return f"""# Code location {location.name} (compose service {location.name}, image {image}).
# Copy to environments/{location.name}.env (git- and docker-ignored) and fill in every line; values unquoted.
# Warehouse host: `postgres` in compose, or a Unix socket directory.
WAREHOUSE_HOST=
# Warehouse port: 5432 in compose.
WAREHOUSE_PORT=
# This location's own role, created by deploy/postgres/init-platform.sh: writes {writes}{reads}.
WAREHOUSE_USER=
# Password of that role.
WAREHOUSE_PASSWORD=
# Warehouse database name; the same in every location's file, e.g. warehouse.
WAREHOUSE_DB=
"""
