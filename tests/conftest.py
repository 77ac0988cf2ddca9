"""Fixtures shared by the whole suite: one real Postgres (embedded, as dev-local runs it)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from devtools.embedded_postgres import embedded_postgres
from tests.warehouse_tools import scratch_database


@pytest.fixture(scope="session")
def warehouse(tmp_path_factory) -> Iterator[dict[str, str]]:
    """libpq settings of the suite's warehouse database, schemas raw/staging/marts created."""
    with embedded_postgres(tmp_path_factory.mktemp("postgres") / "pgdata") as settings:
        yield settings


@pytest.fixture
def fresh_warehouse(warehouse) -> Iterator[dict[str, str]]:
    """A database of its own for one test, on the suite's server, with the warehouse schemas."""
    with scratch_database(warehouse) as settings:
        yield settings
