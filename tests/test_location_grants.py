"""The init script's roles and grants follow the location tables (rendered into it), for the
shipped locations plus a third one that reads marts, on the suite's real Postgres."""

from __future__ import annotations

import os
import subprocess
import uuid
from pathlib import Path

import psycopg
import pytest
from psycopg import sql

from devtools.embedded_postgres import psql_path
from devtools.locations import Location, discover
from devtools.render_deploy import render
from shared import postgres

ROOT = Path(__file__).resolve().parents[1]
INIT_SCRIPT = "deploy/postgres/init-platform.sh"


@pytest.fixture
def initialised(warehouse, tmp_path):
    """The init script run with the shipped locations and `reports` (writes reports, reads marts);
    role and database names unique to this test. Yields (locations, role by location, database)."""
    suffix = uuid.uuid4().hex[:8]
    reports = Location("reports", "reports", "reports", 4999, tmp_path, writes=("reports",), reads=("marts",))
    locations = [*discover(ROOT), reports]
    roles = {location.name: f"{location.name}_{suffix}" for location in locations}
    database = f"grants_{suffix}"
    for location in locations:
        (tmp_path / f"{location.name}.env").write_text(
            f"WAREHOUSE_USER={roles[location.name]}\nWAREHOUSE_PASSWORD=pw-{suffix}\nWAREHOUSE_DB={database}\n"
        )
    env = os.environ | {
        "PLATFORM_ENV_DIR": str(tmp_path),
        "DAGSTER_PG_USER": f"dagster_{suffix}",
        "DAGSTER_PG_PASSWORD": f"pw-{suffix}",
        "DAGSTER_PG_DB": f"dagster_{suffix}",
        "POSTGRES_USER": warehouse.user,
        "PGHOST": warehouse.host,
        "PGPORT": str(warehouse.port),
        "PATH": os.pathsep.join([str(Path(psql_path()).parent), os.environ["PATH"]]),
    }
    script = tmp_path / "init-platform.sh"
    script.write_text(render(ROOT, locations)[INIT_SCRIPT])
    done = subprocess.run(["bash", str(script)], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    try:
        yield locations, roles, database
    finally:
        with postgres.connect(warehouse, autocommit=True) as admin:
            for name in (database, f"dagster_{suffix}"):
                admin.execute(sql.SQL("drop database if exists {} with (force)").format(sql.Identifier(name)))
            for role in [*roles.values(), f"dagster_{suffix}"]:
                admin.execute(sql.SQL("drop role if exists {}").format(sql.Identifier(role)))


def _as(warehouse, role: str, database: str) -> psycopg.Connection:
    """A connection as `role` (the embedded server trusts local connections)."""
    return postgres.connect(warehouse.replace(user=role, dbname=database, password=""), autocommit=True)


def _readable(conn: psycopg.Connection, schema: str, table: str) -> bool:
    query = sql.SQL("select count(*) from {}.{}").format(sql.Identifier(schema), sql.Identifier(table))
    try:
        return conn.execute(query).fetchone() == (1,)
    except psycopg.errors.InsufficientPrivilege:
        return False


def _can_create(conn: psycopg.Connection, schema: str, table: str) -> bool:
    try:
        conn.execute(
            sql.SQL("create table {}.{} (x int)").format(sql.Identifier(schema), sql.Identifier(table))
        )
        conn.execute(
            sql.SQL("insert into {}.{} values (1)").format(sql.Identifier(schema), sql.Identifier(table))
        )
        return True
    except psycopg.errors.InsufficientPrivilege:
        return False


def test_each_role_writes_its_schemas_and_reads_what_its_table_says(warehouse, initialised):
    locations, roles, database = initialised
    written = {(schema, location.name) for location in locations for schema in location.writes}
    assert ("reports", "reports") in written, "the third location's schema was created from its table"
    for location in locations:  # port order: a writer's tables exist before its readers look
        with _as(warehouse, roles[location.name], database) as conn:
            for schema in {schema for schema, _ in written}:
                allowed = schema in location.writes
                assert _can_create(conn, schema, location.name) == allowed, (location.name, schema)
    for location in locations:
        with _as(warehouse, roles[location.name], database) as conn:
            for schema, writer in sorted(written):
                expected = writer == location.name or schema in location.reads
                assert _readable(conn, schema, writer) == expected, (location.name, f"{schema}.{writer}")


def test_a_writer_others_read_makes_views_only_where_no_other_location_reads(warehouse, initialised):
    """reports reads marts, so marts' role may run no code in marts; its staging views, which no other
    location can reach, it still builds (dbt's staging models are views)."""
    locations, roles, database = initialised
    readers = {schema for location in locations for schema in location.reads}
    marts = next(location for location in locations if location.name == "marts")
    with _as(warehouse, roles["marts"], database) as conn:
        for schema in marts.writes:
            create = sql.SQL("create view {}.{} as select 1 as x").format(
                sql.Identifier(schema), sql.Identifier(f"v_{schema}")
            )
            if schema in readers:
                with pytest.raises(psycopg.errors.InsufficientPrivilege, match=f"reads schema {schema}"):
                    conn.execute(create)
            else:
                conn.execute(create)
                assert conn.execute(
                    sql.SQL("select x from {}.{}").format(
                        sql.Identifier(schema), sql.Identifier(f"v_{schema}")
                    )
                ).fetchone() == (1,)
