"""Dagster resources every location can use."""

from __future__ import annotations

from typing import TYPE_CHECKING

import dagster as dg

from shared import postgres

if TYPE_CHECKING:
    import psycopg


class PostgresWarehouse(dg.ConfigurableResource):
    """The Postgres warehouse. Configured only from WAREHOUSE_* variables (see `from_env`)."""

    host: str
    port: str = "5432"
    user: str
    password: str = ""
    dbname: str

    @classmethod
    def from_env(cls) -> PostgresWarehouse:
        """Read lazily at run time: nothing touches os.environ when definitions are imported."""
        env = postgres.WAREHOUSE_ENV
        return cls(
            host=dg.EnvVar(env["host"]),
            port=dg.EnvVar(env["port"]),
            user=dg.EnvVar(env["user"]),
            password=dg.EnvVar(env["password"]),
            dbname=dg.EnvVar(env["dbname"]),
        )

    def settings(self) -> dict[str, str]:
        values = {
            "host": self.host,
            "port": self.port,
            "user": self.user,
            "password": self.password,
            "dbname": self.dbname,
        }
        return {key: value for key, value in values.items() if value}

    def connect(self, **kwargs) -> psycopg.Connection:
        return postgres.connect(self.settings(), **kwargs)

    def child_env(self) -> dict[str, str]:
        """Environment for a child process (Pipes). Passed as env, never as run config or logs."""
        return postgres.warehouse_env(self.settings())
