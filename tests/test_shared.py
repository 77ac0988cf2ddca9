import os
import re
import subprocess
from pathlib import Path

import dagster as dg
import pytest

from devtools.locations import discover, warehouse_schemas
from devtools.paths import workspace_root
from shared import postgres
from shared.postgres import WarehouseSettings
from shared.resources import PostgresWarehouse

PROFILE = Path(postgres.__file__).parents[2] / "marts" / "marts" / "dbt_project" / "profiles.yml"


def test_missing_settings_are_named():
    with pytest.raises(postgres.WarehouseNotConfigured, match="WAREHOUSE_HOST, WAREHOUSE_USER, WAREHOUSE_DB"):
        WarehouseSettings.from_env({})


def test_a_port_that_is_no_number_is_named():
    env = {"WAREHOUSE_HOST": "h", "WAREHOUSE_USER": "u", "WAREHOUSE_DB": "d", "WAREHOUSE_PORT": "54x"}
    with pytest.raises(postgres.WarehouseNotConfigured, match="WAREHOUSE_PORT must be a port number"):
        WarehouseSettings.from_env(env)


def test_settings_round_trip_through_child_env(warehouse):
    env = warehouse.to_env()
    assert WarehouseSettings.from_env(env) == warehouse
    with postgres.connect(WarehouseSettings.from_env(env)) as conn:
        schemas = {row[0] for row in conn.execute("select nspname from pg_namespace")}
    assert set(warehouse_schemas(discover(workspace_root()))) <= schemas


def test_libpq_tools_get_the_same_settings(warehouse, tmp_path):
    from devtools.embedded_postgres import psql_path

    done = subprocess.run(
        [psql_path(), "-X", "-At", "-c", "select current_database(), current_user"],
        env={"PATH": os.environ["PATH"]} | warehouse.libpq_env(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.stdout.strip() == f"{warehouse.dbname}|{warehouse.user}", done.stderr


def test_the_password_is_never_shown():
    assert "s3cret" not in repr(WarehouseSettings(host="h", user="u", dbname="d", password="s3cret"))


def test_the_dbt_profile_reads_the_same_variables():
    read = set(re.findall(r"env_var\('(WAREHOUSE_\w+)'", PROFILE.read_text()))
    assert read == set(WarehouseSettings.ENVIRONMENT.values())


def test_resource_reads_env_at_run_time_only(warehouse, monkeypatch):
    resource = PostgresWarehouse()  # no variable set yet: building it must not read them
    for var, value in warehouse.to_env().items():
        monkeypatch.setenv(var, value)

    @dg.asset
    def probe(warehouse: PostgresWarehouse) -> int:
        with warehouse.connect() as conn:
            return conn.execute("select 41 + 1").fetchone()[0]

    result = dg.materialize([probe], resources={"warehouse": resource})
    assert result.output_for_node("probe") == 42
    assert "WAREHOUSE_PASSWORD" not in str(result.all_events)
