"""Dagster resources every location can use."""

from __future__ import annotations

from typing import TYPE_CHECKING

import dagster as dg

from shared.postgres import WarehouseSettings, connect

if TYPE_CHECKING:
    import psycopg


class PostgresWarehouse(dg.ConfigurableResource):
    """The Postgres warehouse, configured by the WAREHOUSE_* variables of `WarehouseSettings`.

    They are read when a run uses the resource, never when definitions load, so a location imports
    and loads without them."""

    def settings(self) -> WarehouseSettings:
        return WarehouseSettings.from_env()

    def connect(self, **kwargs) -> psycopg.Connection:
        return connect(self.settings(), **kwargs)

    def child_env(self) -> dict[str, str]:
        """Environment for a child process (Pipes). Passed as env, never as run config or logs."""
        return self.settings().to_env()
