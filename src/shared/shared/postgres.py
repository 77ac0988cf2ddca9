"""The warehouse connection, as plain libpq settings read from the environment.

Kept free of Dagster so that source programs (which must not import dagster) and dev tooling
use the same configuration surface as the Dagster resource in `shared.resources`.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import psycopg

#: Every variable the warehouse connection reads. Host may be a Unix socket directory.
WAREHOUSE_ENV = {
    "host": "WAREHOUSE_HOST",
    "port": "WAREHOUSE_PORT",
    "user": "WAREHOUSE_USER",
    "password": "WAREHOUSE_PASSWORD",
    "dbname": "WAREHOUSE_DB",
}


class WarehouseNotConfigured(RuntimeError):
    pass


def warehouse_settings(env: Mapping[str, str] | None = None) -> dict[str, str]:
    """libpq keyword settings from WAREHOUSE_* variables; raises naming the missing ones."""
    env = os.environ if env is None else env
    settings = {key: env.get(var, "") for key, var in WAREHOUSE_ENV.items()}
    missing = [WAREHOUSE_ENV[key] for key in ("host", "user", "dbname") if not settings[key]]
    if missing:
        raise WarehouseNotConfigured(
            f"warehouse not configured: set {', '.join(missing)} (see environments/*.env.template)"
        )
    return {key: value for key, value in settings.items() if value}


def warehouse_env(settings: Mapping[str, str]) -> dict[str, str]:
    """The WAREHOUSE_* variables that hand `settings` to a child process."""
    return {WAREHOUSE_ENV[key]: str(value) for key, value in settings.items() if value}


def is_warehouse_configured(env: Mapping[str, str] | None = None) -> bool:
    env = os.environ if env is None else env
    return bool(env.get(WAREHOUSE_ENV["host"]))


def connect(
    settings: Mapping[str, str] | None = None, application_name: str = "dagster-platform", **kwargs
) -> psycopg.Connection:
    """A psycopg 3 connection to the warehouse, from `settings` or the environment."""
    import psycopg

    settings = warehouse_settings() if settings is None else settings
    return psycopg.connect(application_name=application_name, **settings, **kwargs)


def create_schemas(conn: psycopg.Connection, schemas: Iterable[str]) -> None:
    """Create `schemas` (idempotent); roles and grants are the deployment's business."""
    from psycopg import sql

    with conn.transaction():
        for schema in schemas:
            conn.execute(sql.SQL("create schema if not exists {}").format(sql.Identifier(schema)))
