"""Dagster resources every location can use."""

from __future__ import annotations

from typing import TYPE_CHECKING

import dagster as dg

from shared.postgres import WarehouseNotConfigured, WarehouseSettings, connect

if TYPE_CHECKING:
    import psycopg


class PostgresWarehouse(dg.ConfigurableResource):
    """The Postgres warehouse, configured by the WAREHOUSE_* variables of `WarehouseSettings`.

    They are read when a run uses the resource, never when definitions load, so a location imports
    and loads without them. Missing, partial or refused settings fail the step for good
    (`allow_retries=False`): an asset's RetryPolicy would only repeat the same error."""

    def settings(self) -> WarehouseSettings:
        try:
            return WarehouseSettings.from_env()
        except WarehouseNotConfigured as error:
            raise dg.Failure(description=str(error), allow_retries=False) from None

    def connect(self, **kwargs) -> psycopg.Connection:
        try:
            return connect(self.settings(), **kwargs)
        except WarehouseNotConfigured as error:
            raise dg.Failure(description=str(error), allow_retries=False) from error

    def child_env(self) -> dict[str, str]:
        """Environment for a child process (Pipes). Passed as env, never as run config or logs."""
        return self.settings().to_env()
