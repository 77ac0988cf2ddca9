"""The warehouse connection: one settings type, read from and handed on as WAREHOUSE_* variables.

Kept free of Dagster so that source programs (which must not import dagster) and dev tooling use the
same settings as the Dagster resource in `shared.resources` and the dbt profile of `marts`.
"""

from __future__ import annotations

import dataclasses
import os
import re
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any, ClassVar

if TYPE_CHECKING:
    import psycopg


class WarehouseNotConfigured(RuntimeError):
    """Missing, partial or rejected warehouse settings: permanent, a retry cannot fix them."""


#: SQLSTATEs of a connection the server refused for its settings (bad password, unknown role or
#: database, no permission to connect): a retry gives the same answer.
REFUSED_SQLSTATES = {"28000": "WAREHOUSE_USER", "28P01": "WAREHOUSE_PASSWORD", "3D000": "WAREHOUSE_DB"}
_REFUSED_MESSAGES = {
    r"password authentication failed|no password supplied": "WAREHOUSE_PASSWORD",
    r'role ".*" does not exist|permission denied for database|no pg_hba\.conf entry': "WAREHOUSE_USER",
    r'database ".*" does not exist': "WAREHOUSE_DB",
}


@dataclasses.dataclass(frozen=True)
class WarehouseSettings:
    """libpq settings of the warehouse. `host` may be a Unix socket directory."""

    host: str
    user: str
    dbname: str
    port: int = 5432
    password: str = dataclasses.field(default="", repr=False)

    #: The one mapping between these fields and the environment (the dbt profile reads the same names).
    ENVIRONMENT: ClassVar[Mapping[str, str]] = {
        "host": "WAREHOUSE_HOST",
        "port": "WAREHOUSE_PORT",
        "user": "WAREHOUSE_USER",
        "password": "WAREHOUSE_PASSWORD",
        "dbname": "WAREHOUSE_DB",
    }
    REQUIRED: ClassVar[tuple[str, ...]] = ("host", "user", "dbname")

    @classmethod
    def is_configured(cls, env: Mapping[str, str] | None = None) -> bool:
        """Whether any WAREHOUSE_* variable is set: then all required ones must be (`from_env`)."""
        env = os.environ if env is None else env
        return any(env.get(var) for var in cls.ENVIRONMENT.values())

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> WarehouseSettings:
        """Read WAREHOUSE_*; raises naming every missing variable."""
        env = os.environ if env is None else env
        values = {field: env.get(var, "") for field, var in cls.ENVIRONMENT.items()}
        missing = [cls.ENVIRONMENT[field] for field in cls.REQUIRED if not values[field]]
        if missing:
            given = [var for var in cls.ENVIRONMENT.values() if env.get(var)]
            partial = f" (only {', '.join(given)} is set)" if given else ""
            raise WarehouseNotConfigured(
                f"warehouse not configured: set {', '.join(missing)}{partial}"
                " (see environments/*.env.template)"
            )
        port = values.pop("port") or cls.port
        try:
            return cls(**values, port=int(port))
        except ValueError:
            raise WarehouseNotConfigured(
                f"{cls.ENVIRONMENT['port']} must be a port number, not {port!r}"
            ) from None

    def to_env(self) -> dict[str, str]:
        """The variables that hand these settings to a child process (every one, empty password too,
        so nothing inherited from the parent's environment leaks in)."""
        return {var: str(getattr(self, field)) for field, var in self.ENVIRONMENT.items()}

    def libpq(self) -> dict[str, Any]:
        """Keyword arguments for a libpq connection (an empty password is left to libpq's defaults)."""
        values = dataclasses.asdict(self)
        return {key: value for key, value in values.items() if value != ""}

    def libpq_env(self) -> dict[str, str]:
        """The same settings as libpq's own variables (PGHOST, ...), for psql and other libpq tools."""
        names = {"host": "PGHOST", "port": "PGPORT", "user": "PGUSER", "password": "PGPASSWORD"}
        return {names.get(key, "PGDATABASE"): str(value) for key, value in self.libpq().items()}

    def replace(self, **changes: Any) -> WarehouseSettings:
        return dataclasses.replace(self, **changes)


def refused(error: Exception, settings: WarehouseSettings) -> WarehouseNotConfigured | None:
    """The permanent error for a connection the server refused because of its settings (naming the
    variable to fix), or None when the failure may pass on a retry (server down, network)."""
    state = getattr(error, "sqlstate", None)
    text = str(error).strip()
    variable = REFUSED_SQLSTATES.get(state or "")
    if variable is None:
        variable = next((var for pattern, var in _REFUSED_MESSAGES.items() if re.search(pattern, text)), None)
    if variable is None:
        return None
    # libpq: "connection to server ... failed: FATAL:  <why>" then DETAIL/HINT lines: keep the why.
    first, *details = text.splitlines()
    why = " ".join(" ".join([first.rsplit("failed: ", 1)[-1], *details]).split())
    return WarehouseNotConfigured(
        f"the warehouse at {settings.host}:{settings.port} refused the connection: {why} (check {variable})"
    )


def connect(
    settings: WarehouseSettings | None = None, application_name: str = "dagster-platform", **kwargs
) -> psycopg.Connection:
    """A psycopg 3 connection to the warehouse, from `settings` or the environment. Settings the
    server refuses raise WarehouseNotConfigured (permanent); other OperationalErrors pass through."""
    import psycopg

    settings = WarehouseSettings.from_env() if settings is None else settings
    try:
        return psycopg.connect(application_name=application_name, **settings.libpq(), **kwargs)
    except psycopg.OperationalError as error:
        permanent = refused(error, settings)
        if permanent is not None:
            raise permanent from error
        raise


def create_schemas(conn: psycopg.Connection, schemas: Iterable[str]) -> None:
    """Create `schemas` (idempotent); roles and grants are the deployment's business."""
    from psycopg import sql

    with conn.transaction():
        for schema in schemas:
            conn.execute(sql.SQL("create schema if not exists {}").format(sql.Identifier(schema)))
