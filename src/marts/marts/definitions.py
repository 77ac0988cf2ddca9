import dagster as dg
from shared.resources import PostgresWarehouse


@dg.asset(key=["marts", "ping"], group_name="marts", kinds={"postgres"})
def ping(warehouse: PostgresWarehouse) -> dg.MaterializeResult:
    with warehouse.connect() as conn:
        (version,) = conn.execute("select version()").fetchone()
    return dg.MaterializeResult(metadata={"server_version": version})


defs = dg.Definitions(assets=[ping], resources={"warehouse": PostgresWarehouse.from_env()})
