"""Warehouse settings a source program cannot work with: a permanent exit (65, never retried) naming
the variable, for any declared source."""

from __future__ import annotations

import pytest

from ingest_raw.catalog import SOURCES
from ingest_raw.errors import EXIT_PERMANENT
from tests.ingest.ingest_helpers import run_source

#: Any declared Python source: the settings are read before the input.
SOURCE = next(name for name, source in SOURCES.items() if source.program is None)


@pytest.mark.parametrize(
    ("change", "variable"),
    [({"dbname": "no_such_database"}, "WAREHOUSE_DB"), ({"user": "no_such_role"}, "WAREHOUSE_USER")],
)
def test_settings_the_server_refuses_exit_permanent_naming_the_variable(warehouse, change, variable):
    result = run_source(warehouse.replace(**change), SOURCE)
    assert result.returncode == EXIT_PERMANENT, result.stderr
    assert f"source {SOURCE!r}" in result.stderr
    assert f"check {variable}" in result.stderr


def test_a_partial_set_exits_permanent_naming_what_is_missing(warehouse):
    result = run_source(warehouse, SOURCE, WAREHOUSE_DB="", WAREHOUSE_USER="")
    assert result.returncode == EXIT_PERMANENT, result.stderr
    assert "set WAREHOUSE_USER, WAREHOUSE_DB" in result.stderr
