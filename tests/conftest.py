"""Fixtures shared by the whole suite: one real Postgres (embedded, as dev-local runs it), and the
TypeScript source programs installed and compiled before any test runs (only what changed since the
last session; a file lock keeps concurrent sessions and xdist workers from colliding)."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from devtools import typescript
from devtools.embedded_postgres import embedded_postgres
from shared.postgres import WarehouseSettings
from tests.warehouse_tools import scratch_database


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--snapshot-update",
        action="store_true",
        help="rewrite each location's definitions snapshot (tests/test_definitions_snapshot.py)",
    )


def pytest_sessionstart(session: pytest.Session) -> None:
    if typescript.node() is not None:
        typescript.prepare()


@pytest.fixture(scope="session")
def warehouse() -> Iterator[WarehouseSettings]:
    """Settings of the suite's warehouse database, schemas raw/staging/marts created.

    The server's data lives in a folder of this session's own, outside pytest's basetemp: pytest
    resets that folder's mode and prunes old ones when another session starts, which would pull the
    data from under a server still running (concurrent suites: two worktrees, CI beside a developer)."""
    folder = Path(tempfile.mkdtemp(prefix="platform-tests-postgres-"))
    try:
        with embedded_postgres(folder / "pgdata") as settings:
            yield settings
    finally:
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture
def fresh_warehouse(warehouse) -> Iterator[WarehouseSettings]:
    """A database of its own for one test, on the suite's server, with the warehouse schemas."""
    with scratch_database(warehouse) as settings:
        yield settings
