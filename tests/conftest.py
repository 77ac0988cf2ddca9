"""Fixtures shared by the whole suite: one real Postgres (embedded, as dev-local runs it)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from psycopg import sql

from devtools.embedded_postgres import embedded_postgres
from shared import postgres


@pytest.fixture(scope="session")
def warehouse(tmp_path_factory) -> Iterator[dict[str, str]]:
    """libpq settings of the suite's warehouse database, schemas raw/staging/marts created."""
    with embedded_postgres(tmp_path_factory.mktemp("postgres") / "pgdata") as settings:
        yield settings


@pytest.fixture
def fresh_warehouse(warehouse) -> Iterator[dict[str, str]]:
    """A database of its own for one test, on the suite's server, with the warehouse schemas."""
    name = f"test_{uuid.uuid4().hex[:12]}"
    with postgres.connect(warehouse, autocommit=True) as admin:
        admin.execute(sql.SQL("create database {}").format(sql.Identifier(name)))
    settings = warehouse | {"dbname": name}
    with postgres.connect(settings) as conn:
        postgres.create_schemas(conn)
    yield settings
    with postgres.connect(warehouse, autocommit=True) as admin:
        admin.execute(sql.SQL("drop database {} with (force)").format(sql.Identifier(name)))
