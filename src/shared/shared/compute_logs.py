"""Captured step output (stdout/stderr) kept in Dagster's own Postgres database, for runs on any node.

`PostgresComputeLogManager` captures to a local directory with Dagster's LocalComputeLogManager, as
dagster-aws's S3ComputeLogManager does, and uploads each log into the table `compute_log_chunks` of
the database in `postgres_db` (the same block as `storage: postgres:`): when the step ends, and every
`upload_interval` seconds while it runs, so the UI can tail a running step. A webserver on any other
node reads the logs back from there, only the byte range it asks for; nothing is shared on disk.

Memory stays bounded: a log is streamed in rows of CHUNK_BYTES, and one longer than `max_log_bytes` is
stored cut at that size, TRUNCATION_MARKER appended (it names no total, so every upload of a truncated
log is the same bytes and a reader's cursor stays valid). An upload replaces the log's rows in one
transaction under a per-log advisory lock: readers see the old or the new upload, never a mix, and a
partial upload still running when the step ends cannot overwrite the final one.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import IO, Any

import psycopg
from dagster import Field, IntSource, StringSource
from dagster import _check as check
from dagster._config.config_type import Noneable
from dagster._core.storage.cloud_storage_compute_log_manager import (
    CloudStorageComputeLogManager,
    PollingComputeLogSubscriptionManager,
)
from dagster._core.storage.compute_log_manager import CapturedLogSubscription, ComputeIOType
from dagster._core.storage.config import pg_config
from dagster._core.storage.local_compute_log_manager import IO_TYPE_EXTENSION, LocalComputeLogManager
from dagster._serdes import ConfigurableClass, ConfigurableClassData
from dagster._utils import ensure_dir, ensure_file
from dagster_shared.seven import get_system_temp_directory

TABLE = "compute_log_chunks"
CHUNK_BYTES = 1024 * 1024
DEFAULT_MAX_LOG_BYTES = 64 * 1024 * 1024
DEFAULT_UPLOAD_INTERVAL = 30
CONNECT_TIMEOUT_SECONDS = 10
TRUNCATION_MARKER = "\n[truncated: only the first {kept} bytes of this log are stored (max_log_bytes)]\n"

_CREATE_TABLE = f"""
create table if not exists {TABLE} (
    log_key text[] not null,
    io_type text not null,
    partial boolean not null,
    seq integer not null,
    byte_offset bigint not null,
    data bytea not null,
    primary key (log_key, io_type, seq)
)"""
_LOG = "log_key = %(key)s::text[] and io_type = %(io)s"
_READ_RANGE = f"""
select substring(data from (greatest(%(start)s::bigint - byte_offset, 0) + 1)::int
                 for coalesce(%(stop)s::bigint - greatest(%(start)s::bigint, byte_offset), length(data))::int)
from {TABLE}
where {_LOG} and byte_offset + length(data) > %(start)s::bigint
  and (%(stop)s::bigint is null or byte_offset < %(stop)s::bigint)
order by seq"""


class ComputeLogStoreUnavailable(RuntimeError):
    """The compute log store's Postgres could not be reached or refused the connection."""


class PostgresComputeLogManager(CloudStorageComputeLogManager, ConfigurableClass):
    """Captures stdout/stderr locally and keeps them in Postgres (see the module's docstring).

    Args:
        postgres_db: libpq settings as in `storage: postgres: postgres_db:` (`scheme` is accepted
            and unused: this store connects with psycopg 3; `params` are libpq parameters).
        local_dir: where steps capture before uploading (default: the system's temp directory).
        upload_interval: seconds between partial uploads of a running step; None: at its end only.
        max_log_bytes: bytes kept of each stdout or stderr log; the rest is dropped.
    """

    def __init__(
        self,
        postgres_db: Mapping[str, Any],
        local_dir: str | None = None,
        upload_interval: int | None = DEFAULT_UPLOAD_INTERVAL,
        max_log_bytes: int = DEFAULT_MAX_LOG_BYTES,
        inst_data: ConfigurableClassData | None = None,
    ):
        self._host = check.str_param(postgres_db["hostname"], "hostname")
        self._port = int(postgres_db.get("port", 5432))
        self._dbname = check.str_param(postgres_db["db_name"], "db_name")
        self._password = postgres_db.get("password") or ""
        self._libpq = {
            "host": self._host,
            "port": self._port,
            "user": postgres_db["username"],
            "dbname": self._dbname,
            "application_name": "dagster-compute-logs",
            "connect_timeout": CONNECT_TIMEOUT_SECONDS,
            **({"password": self._password} if self._password else {}),
            **postgres_db.get("params", {}),
        }
        self._upload_interval = check.opt_int_param(upload_interval, "upload_interval")
        self._max_log_bytes = check.int_param(max_log_bytes, "max_log_bytes")
        check.invariant(self._max_log_bytes > 0, "max_log_bytes must be positive")
        self._local_manager = LocalComputeLogManager(local_dir or get_system_temp_directory())
        self._subscription_manager = PollingComputeLogSubscriptionManager(self)
        self._inst_data = check.opt_inst_param(inst_data, "inst_data", ConfigurableClassData)
        self._table_ready = False
        super().__init__()

    @property
    def inst_data(self) -> ConfigurableClassData | None:
        return self._inst_data

    @classmethod
    def config_type(cls) -> dict[str, Field]:
        return {
            "postgres_db": Field(pg_config()["postgres_db"].config_type),
            "local_dir": Field(StringSource, is_required=False),
            "upload_interval": Field(Noneable(int), is_required=False, default_value=DEFAULT_UPLOAD_INTERVAL),
            "max_log_bytes": Field(IntSource, is_required=False, default_value=DEFAULT_MAX_LOG_BYTES),
        }

    @classmethod
    def from_config_value(
        cls, inst_data: ConfigurableClassData | None, config_value: Mapping[str, Any]
    ) -> PostgresComputeLogManager:
        return cls(inst_data=inst_data, **config_value)

    @property
    def local_manager(self) -> LocalComputeLogManager:
        return self._local_manager

    @property
    def upload_interval(self) -> int | None:
        return self._upload_interval or None

    @contextmanager
    def _connect(self) -> Iterator[psycopg.Connection]:
        """A connection (closed on exit) to the store, its table created the first time."""
        try:
            conn = psycopg.connect(**self._libpq)
        except psycopg.Error as error:
            why = " ".join(str(error).split())
            if self._password:
                why = why.replace(self._password, "***")
            raise ComputeLogStoreUnavailable(
                f"compute log store: cannot connect to Postgres at {self._host}:{self._port}"
                f" (database {self._dbname}): {why}"
            ) from None
        with conn:
            if not self._table_ready:
                with conn.transaction():
                    conn.execute("select pg_advisory_xact_lock(hashtext(%s))", (TABLE,))
                    conn.execute(_CREATE_TABLE)
                self._table_ready = True
            yield conn

    def upload_to_cloud_storage(
        self, log_key: Sequence[str], io_type: ComputeIOType, partial: bool = False
    ) -> None:
        path = self.local_manager.get_captured_local_path(log_key, IO_TYPE_EXTENSION[io_type])
        ensure_file(path)
        log = {"key": list(log_key), "io": IO_TYPE_EXTENSION[io_type]}
        with open(path, "rb") as source, self._connect() as conn, conn.transaction():
            conn.execute(
                "select pg_advisory_xact_lock(hashtextextended(%s, 0))",
                (f"{TABLE}/{'/'.join(log_key)}.{log['io']}",),
            )
            if partial and self._stored(conn, log, partial=False):
                return
            conn.execute(f"delete from {TABLE} where {_LOG}", log)
            offset = 0
            for seq, chunk in enumerate(self._chunks(source)):
                conn.execute(
                    f"insert into {TABLE} (log_key, io_type, partial, seq, byte_offset, data)"
                    " values (%(key)s::text[], %(io)s, %(partial)s, %(seq)s, %(offset)s, %(data)b)",
                    {**log, "partial": partial, "seq": seq, "offset": offset, "data": chunk},
                )
                offset += len(chunk)

    def _chunks(self, source: IO[bytes]) -> Iterator[bytes]:
        """The first `max_log_bytes` of `source` in pieces of at most CHUNK_BYTES (one, empty, for an
        empty log: it is stored all the same), then the truncation marker if `source` has more."""
        kept = 0
        chunk = source.read(min(CHUNK_BYTES, self._max_log_bytes))
        while True:
            yield chunk
            kept += len(chunk)
            chunk = source.read(min(CHUNK_BYTES, self._max_log_bytes - kept))
            if not chunk:
                break
        if kept == self._max_log_bytes and source.read(1):
            yield TRUNCATION_MARKER.format(kept=kept).encode()

    def _stored(self, conn: psycopg.Connection, log: Mapping[str, Any], partial: bool | None = None) -> bool:
        """Whether the store holds the log (final or partial: None; else only that kind)."""
        kind = "" if partial is None else " and partial = %(partial)s"
        query = f"select exists (select 1 from {TABLE} where {_LOG}{kind})"
        return conn.execute(query, {**log, "partial": partial}).fetchone()[0]

    def cloud_storage_has_logs(
        self, log_key: Sequence[str], io_type: ComputeIOType, partial: bool = False
    ) -> bool:
        with self._connect() as conn:
            return self._stored(conn, {"key": list(log_key), "io": IO_TYPE_EXTENSION[io_type]}, partial)

    def get_log_data_for_type(
        self, log_key: Sequence[str], io_type: ComputeIOType, offset: int, max_bytes: int | None
    ) -> tuple[bytes | None, int]:
        """Bytes [offset, offset + max_bytes) of the log: from the local capture on the node that runs
        the step, else from the store (only that range), else (None, offset)."""
        if self.has_local_file(log_key, io_type):
            path = self.local_manager.get_captured_local_path(log_key, IO_TYPE_EXTENSION[io_type])
            return self.local_manager.read_path(path, offset=offset, max_bytes=max_bytes)
        log = {"key": list(log_key), "io": IO_TYPE_EXTENSION[io_type]}
        stop = None if max_bytes is None else offset + max_bytes
        with self._connect() as conn:
            rows = conn.execute(_READ_RANGE, {**log, "start": offset, "stop": stop}).fetchall()
            if not rows and not self._stored(conn, log):
                return None, offset
        data = b"".join(row[0] for row in rows)
        return data, offset + len(data)

    def download_from_cloud_storage(
        self, log_key: Sequence[str], io_type: ComputeIOType, partial: bool = False
    ) -> None:
        """Write the stored log to the local capture path (the webserver's download link serves it)."""
        path = self.local_manager.get_captured_local_path(
            log_key, IO_TYPE_EXTENSION[io_type], partial=partial
        )
        ensure_dir(os.path.dirname(path))
        log = {"key": list(log_key), "io": IO_TYPE_EXTENSION[io_type], "partial": partial}
        with self._connect() as conn, conn.cursor(name="compute_log_download") as cursor:
            cursor.itersize = 1
            cursor.execute(
                f"select data from {TABLE} where {_LOG} and partial = %(partial)s order by seq", log
            )
            with open(path, "wb") as target:
                for (chunk,) in cursor:
                    target.write(chunk)

    def delete_logs(self, log_key: Sequence[str] | None = None, prefix: Sequence[str] | None = None) -> None:
        self.local_manager.delete_logs(log_key=log_key, prefix=prefix)
        if log_key:
            where, params = "log_key = %s::text[]", (list(log_key),)
        else:
            prefix = list(check.not_none(prefix))
            where, params = "log_key[1:%s] = %s::text[]", (len(prefix), prefix)
        with self._connect() as conn:
            conn.execute(f"delete from {TABLE} where {where}", params)

    def download_url_for_type(self, log_key: Sequence[str], io_type: ComputeIOType) -> str | None:
        if not self.is_capture_complete(log_key):
            return None
        return self.local_manager.get_captured_log_download_url(log_key, io_type)

    def display_path_for_type(self, log_key: Sequence[str], io_type: ComputeIOType) -> str:
        return (
            f"postgres://{self._host}:{self._port}/{self._dbname}/{TABLE}/"
            f"{'/'.join(log_key)}.{IO_TYPE_EXTENSION[io_type]}"
        )

    def on_subscribe(self, subscription: CapturedLogSubscription) -> None:
        self._subscription_manager.add_subscription(subscription)

    def on_unsubscribe(self, subscription: CapturedLogSubscription) -> None:
        self._subscription_manager.remove_subscription(subscription)

    def dispose(self) -> None:
        self._subscription_manager.dispose()
        self._local_manager.dispose()
