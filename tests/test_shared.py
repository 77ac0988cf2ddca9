import pytest

from devtools.locations import discover, warehouse_schemas
from shared import postgres
from shared.resources import PostgresWarehouse
from shared.settings import workspace_root


def test_missing_settings_are_named():
    with pytest.raises(postgres.WarehouseNotConfigured, match="WAREHOUSE_HOST, WAREHOUSE_USER, WAREHOUSE_DB"):
        postgres.warehouse_settings({})


def test_settings_round_trip_through_child_env(warehouse):
    env = postgres.warehouse_env(warehouse)
    assert postgres.warehouse_settings(env) == warehouse
    with postgres.connect(postgres.warehouse_settings(env)) as conn:
        schemas = {row[0] for row in conn.execute("select nspname from pg_namespace")}
    assert set(warehouse_schemas(discover(workspace_root()))) <= schemas


def test_resource_reads_env_at_run_time_only(warehouse, monkeypatch):
    resource = PostgresWarehouse.from_env()  # no variable set yet: building it must not read them
    for key, var in postgres.WAREHOUSE_ENV.items():
        monkeypatch.setenv(var, warehouse.get(key, ""))
    import dagster as dg

    @dg.asset
    def probe(warehouse: PostgresWarehouse) -> int:
        with warehouse.connect() as conn:
            return conn.execute("select 41 + 1").fetchone()[0]

    result = dg.materialize([probe], resources={"warehouse": resource})
    assert result.output_for_node("probe") == 42
    assert "WAREHOUSE_PASSWORD" not in str(result.all_events)
