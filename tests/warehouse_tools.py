"""Test helpers for the warehouse: scratch databases on the suite's server, env for child processes."""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Iterator

from psycopg import sql

from devtools.locations import discover, warehouse_schemas
from devtools.paths import workspace_root
from shared import postgres


@contextlib.contextmanager
def scratch_database(
    server: postgres.WarehouseSettings, prefix: str = "test"
) -> Iterator[postgres.WarehouseSettings]:
    """A new database on `server` with the warehouse schemas; dropped afterwards."""
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    with postgres.connect(server, autocommit=True) as admin:
        admin.execute(sql.SQL("create database {}").format(sql.Identifier(name)))
    settings = server.replace(dbname=name)
    try:
        with postgres.connect(settings) as conn:
            postgres.create_schemas(conn, warehouse_schemas(discover(workspace_root())))
        yield settings
    finally:
        with postgres.connect(server, autocommit=True) as admin:
            admin.execute(sql.SQL("drop database {} with (force)").format(sql.Identifier(name)))


def child_env(settings: postgres.WarehouseSettings, **extra: str) -> dict[str, str]:
    """The environment a subprocess gets: ours, plus the warehouse handed over as WAREHOUSE_*."""
    return os.environ | settings.to_env() | extra
