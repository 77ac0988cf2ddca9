"""Test helpers for the warehouse: scratch databases on the suite's server, env for child processes."""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Iterator

from psycopg import sql

from devtools.locations import discover, warehouse_schemas
from shared import postgres
from shared.settings import workspace_root


@contextlib.contextmanager
def scratch_database(server: dict[str, str], prefix: str = "test") -> Iterator[dict[str, str]]:
    """A new database on `server` with the warehouse schemas; dropped afterwards."""
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    with postgres.connect(server, autocommit=True) as admin:
        admin.execute(sql.SQL("create database {}").format(sql.Identifier(name)))
    settings = server | {"dbname": name}
    try:
        with postgres.connect(settings) as conn:
            postgres.create_schemas(conn, warehouse_schemas(discover(workspace_root())))
        yield settings
    finally:
        with postgres.connect(server, autocommit=True) as admin:
            admin.execute(sql.SQL("drop database {} with (force)").format(sql.Identifier(name)))


def child_env(settings: dict[str, str], **extra: str) -> dict[str, str]:
    """The environment a subprocess gets: ours, plus the warehouse handed over as WAREHOUSE_*."""
    return os.environ | postgres.warehouse_env(settings) | extra
