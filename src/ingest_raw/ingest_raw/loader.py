"""Load one source into Postgres `raw.<table>` atomically.

Everything happens in ONE transaction: lock, delete the rows being replaced (the whole table, or one
partition), COPY the input straight into the table (its primary key and types check every row as it
arrives, and Postgres names the line and column of a bad one), validate, commit. Until the commit,
readers see the previous rows (MVCC); a crash, kill -9 or SIGINT at any moment rolls everything back.
Deleting rather than swapping tables keeps views that marts build on `raw.<table>` valid.
"""

from __future__ import annotations

import os
import re
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass

import psycopg
from psycopg import errors, sql

from ingest_raw import csvstream
from ingest_raw.declarations import SCHEMA, DeclarationError, Source
from ingest_raw.errors import LoadError, PermanentLoadError, TransientLoadError
from ingest_raw.reader import open_input
from shared import postgres

#: Test hook: the stage name at which the program stops and waits to be killed (see `pause_if_asked`).
PAUSE_ENV = "INGEST_PAUSE_AT"
STAGES = ("locked", "copy", "validate", "commit")

#: format_type() spelling of the declared column types.
_CATALOG_TYPES = {"timestamptz": "timestamp with time zone", "timestamp": "timestamp without time zone"}
_COPY_CONTEXT = re.compile(r"line (\d+)(?:, column (\w+))?")
_SAMPLE = 10
_TRANSIENT_SQLSTATES = {"40001", "40P01", "55P03", "57P01", "57P02", "57P03", "53300"}


@dataclass(frozen=True)
class LoadReport:
    source: str
    table: str
    partition_key: str | None
    input: str
    rows_loaded: int
    #: Rows in the whole table after the load (more than rows_loaded when one partition was loaded).
    table_rows: int
    previous_rows: int
    rows_rejected: int
    rejections: tuple[str, ...]
    input_lines: int
    bytes_read: int
    content_bytes: int
    checksum: str
    seconds: float

    @property
    def row_count_change(self) -> float | None:
        """Relative change against the previous load; None on a first load."""
        if not self.previous_rows:
            return None
        return (self.rows_loaded - self.previous_rows) / self.previous_rows


def pause_if_asked(stage: str) -> None:
    """With INGEST_PAUSE_AT=<stage>, announce the stage on stderr and wait there (for kill tests)."""
    if os.environ.get(PAUSE_ENV) == stage:
        print(f"ingest: paused at {stage} (pid {os.getpid()})", file=sys.stderr, flush=True)
        while True:
            time.sleep(3600)


def load(
    source: Source,
    settings: postgres.WarehouseSettings,
    *,
    partition_key: str | None = None,
    input: str | None = None,
    timeout: float | None = None,
) -> LoadReport:
    """Replace `raw.<table>` (or one partition of it) by the input; raise LoadError leaving it as it was."""
    started = time.perf_counter()
    input = input or source.input
    where = f"source {source.name!r}: {input}"
    partition = _partition_filter(source, partition_key)
    with open_input(input, timeout or source.timeout_seconds) as stream:
        header, rest = csvstream.split_header(stream.chunks(), source.format, where)
        columns = _header_columns(source, header.names, where)
        with _connect(settings) as conn:
            rejections = _Rejections(source, conn, where)
            try:
                with conn.transaction():
                    table = sql.Identifier(SCHEMA, source.table)
                    _ensure_table(conn, source)
                    _lock(conn, source, partition_key)
                    pause_if_asked("locked")
                    previous = _count(conn, table, partition)
                    conn.execute(sql.SQL("delete from {}").format(table) + partition)
                    rows, lines = _copy(conn, source, table, columns, header, rest, partition)
                    table_rows = _count(conn, table, sql.SQL("")) if partition_key else rows
                    pause_if_asked("validate")
                    rejections.check()
                    if rows == 0 and not source.allow_empty:
                        scope = f"partition {partition_key}" if partition_key else "the input"
                        raise PermanentLoadError(f"{where}: no rows in {scope}; expected at least one")
                    pause_if_asked("commit")
            except psycopg.Error as error:
                raise _load_error(error, source, where) from error
    return LoadReport(
        source=source.name,
        table=f"{SCHEMA}.{source.table}",
        partition_key=partition_key,
        input=input,
        rows_loaded=rows,
        table_rows=table_rows,
        previous_rows=previous,
        rows_rejected=len(rejections.messages),
        rejections=tuple(rejections.messages[:_SAMPLE]),
        input_lines=lines,
        bytes_read=stream.bytes_read,
        content_bytes=stream.content_bytes,
        checksum=stream.checksum,
        seconds=time.perf_counter() - started,
    )


def create_table_sql(source: Source) -> sql.Composed:
    columns = [sql.SQL("{} {}").format(sql.Identifier(col.name), sql.SQL(col.type)) for col in source.columns]
    if source.primary_key:
        key = sql.SQL(", ").join(map(sql.Identifier, source.primary_key))
        columns.append(sql.SQL("primary key ({})").format(key))
    return sql.SQL("create table if not exists {} ({})").format(
        sql.Identifier(SCHEMA, source.table), sql.SQL(", ").join(columns)
    )


def _connect(settings: postgres.WarehouseSettings) -> psycopg.Connection:
    try:
        return postgres.connect(settings, application_name="ingest-raw")
    except psycopg.OperationalError as error:
        raise TransientLoadError(f"cannot connect to the warehouse: {error}".strip()) from error


def _partition_filter(source: Source, partition_key: str | None) -> sql.Composable:
    if partition_key is None:
        return sql.SQL("")
    if source.partition is None:
        raise PermanentLoadError(f"source {source.name!r} is not partitioned; got partition {partition_key}")
    try:
        values = source.partition.values(partition_key)
    except DeclarationError as error:
        raise PermanentLoadError(f"source {source.name!r}: {error}") from error
    conditions = [
        sql.SQL("{} = {}").format(sql.Identifier(column), sql.Literal(value))
        for column, value in zip(source.partition.columns, values, strict=True)
    ]
    return sql.SQL(" where ") + sql.SQL(" and ").join(conditions)


def _header_columns(source: Source, names: tuple[str, ...], where: str) -> tuple[str, ...]:
    """The header's columns in file order, when they are exactly the declared ones (any order)."""
    declared = source.column_names
    problems = []
    missing = [name for name in declared if name not in names]
    extra = [name for name in names if name not in declared]
    repeated = sorted({name for name in names if names.count(name) > 1})
    if missing:
        problems.append(f"missing column(s) {', '.join(missing)}")
    if extra:
        problems.append(f"unexpected column(s) {', '.join(extra)}")
    if repeated:
        problems.append(f"repeated column(s) {', '.join(repeated)}")
    if problems:
        raise PermanentLoadError(
            f"{where} line 1 (header): {'; '.join(problems)}; expected the columns {', '.join(declared)}"
        )
    return names


def _ensure_table(conn: psycopg.Connection, source: Source) -> None:
    """Create the table on first load (inside the load's transaction, holding the table lock alone, so a
    failed first load leaves nothing); refuse a table whose columns or primary key no longer match the
    declaration (the key is what keeps duplicates out)."""
    name = f'{SCHEMA}."{source.table}"'
    if conn.execute("select to_regclass(%s)", (name,)).fetchone()[0] is None:
        conn.execute("select pg_advisory_xact_lock(hashtextextended(%s, 0))", (_table_lock_key(source),))
        conn.execute(create_table_sql(source))
    found = conn.execute(
        "select attname, format_type(atttypid, atttypmod) from pg_attribute "
        "where attrelid = %s::regclass and attnum > 0 and not attisdropped order by attnum",
        (name,),
    ).fetchall()
    key = conn.execute(
        "select array_agg(a.attname::text order by k.ord) from pg_index i "
        "cross join unnest(i.indkey) with ordinality k(attnum, ord) "
        "join pg_attribute a on a.attrelid = i.indrelid and a.attnum = k.attnum "
        "where i.indrelid = %s::regclass and i.indisprimary",
        (name,),
    ).fetchone()[0]
    expected = [(column.name, _CATALOG_TYPES.get(column.type, column.type)) for column in source.columns]
    if sorted(found) != sorted(expected) or (key or []) != list(source.primary_key):
        shown = ", ".join(f"{name} {type_}" for name, type_ in found)
        raise PermanentLoadError(
            f"source {source.name!r}: {SCHEMA}.{source.table} exists with columns ({shown}) and primary key "
            f"({', '.join(key or [])}), which differ from the declaration; migrate or drop the table"
        )


def _lock(conn: psycopg.Connection, source: Source, partition_key: str | None) -> None:
    """Serialize loads of the same rows: a partition load shares the table lock and holds its partition's;
    a full load holds the table lock alone. Transaction-scoped, so a dead process leaves no lock."""
    table_key = _table_lock_key(source)
    if partition_key is None:
        conn.execute("select pg_advisory_xact_lock(hashtextextended(%s, 0))", (table_key,))
    else:
        conn.execute("select pg_advisory_xact_lock_shared(hashtextextended(%s, 0))", (table_key,))
        conn.execute(
            "select pg_advisory_xact_lock(hashtextextended(%s, 0))", (f"{table_key}/{partition_key}",)
        )


def _table_lock_key(source: Source) -> str:
    return f"{SCHEMA}.{source.table}"


def _count(conn: psycopg.Connection, table: sql.Identifier, partition: sql.Composable) -> int:
    return conn.execute(sql.SQL("select count(*) from {}").format(table) + partition).fetchone()[0]


def _copy(
    conn: psycopg.Connection,
    source: Source,
    table: sql.Identifier,
    columns: tuple[str, ...],
    header: csvstream.Header,
    rest: Iterator[bytes],
    partition: sql.Composable,
) -> tuple[int, int]:
    """COPY the records; returns (rows inserted, input lines). The header goes along (HEADER true) so
    the line numbers Postgres reports are the file's."""
    fmt = source.format
    tolerance = sql.SQL(", on_error ignore, log_verbosity verbose" if source.max_rejected_rows else "")
    statement = sql.SQL(
        "copy {} ({}) from stdin "
        "with (format csv, header true, delimiter {}, quote {}, null {}, encoding {}{})"
    ).format(
        table,
        sql.SQL(", ").join(map(sql.Identifier, columns)),
        sql.Literal(fmt.delimiter),
        sql.Literal(fmt.quote),
        sql.Literal(csvstream.copy_null(fmt)),
        sql.Literal(fmt.encoding),
        tolerance,
    )
    lines = 1
    with conn.cursor() as cursor:
        with cursor.copy(statement + partition) as copy:
            copy.write(header.raw)
            for number, chunk in enumerate(csvstream.records(rest, fmt)):
                copy.write(chunk)
                lines += chunk.count(b"\n")
                if number == 0:
                    pause_if_asked("copy")
        return cursor.rowcount, lines


class _Rejections:
    """Rows COPY skipped for a value of the wrong type (ON_ERROR ignore), as Postgres names them:
    'skipping row due to data type incompatibility at line 3 for column "temp": "warm"'."""

    PREFIX = "skipping row due to data type incompatibility"

    def __init__(self, source: Source, conn: psycopg.Connection, where: str):
        self.messages: list[str] = []
        self._allowed = source.max_rejected_rows
        self._where = where
        if self._allowed:
            if conn.info.server_version < 170000:
                raise PermanentLoadError(f"{where}: max_rejected_rows needs Postgres 17 or later")
            conn.add_notice_handler(self._collect)

    def _collect(self, diag: psycopg.errors.Diagnostic) -> None:
        if (diag.message_primary or "").startswith(self.PREFIX):
            self.messages.append(diag.message_primary)

    def check(self) -> None:
        if len(self.messages) > self._allowed:
            first = "; ".join(self.messages[:3])
            raise PermanentLoadError(
                f"{self._where}: {len(self.messages)} rows rejected, more than the {self._allowed} allowed; "
                f"first: {first}"
            )


def _load_error(error: psycopg.Error, source: Source, where: str) -> LoadError:
    """A database error as a LoadError naming the line, the column and what was expected."""
    diag = error.diag
    if isinstance(error, psycopg.OperationalError) or diag.sqlstate in _TRANSIENT_SQLSTATES:
        return TransientLoadError(f"{where}: warehouse error: {diag.message_primary or error}")
    place = ""
    context = _COPY_CONTEXT.search(diag.context or "")
    if context:
        line, column = context.groups()
        place = f" line {line}" + (f", column {column}" if column else "")
    message = diag.message_primary or str(error)
    if isinstance(error, errors.UniqueViolation):
        message = f"duplicate primary key: {diag.message_detail or message}"
    elif isinstance(error, errors.NotNullViolation):
        message = f"primary key column {diag.column_name} is null; {message}"
    elif context and context.group(2) and diag.sqlstate and diag.sqlstate.startswith("22"):
        column = context.group(2)
        if column in source.column_names:
            message = f"{message}; expected {source.column(column).type}"
    return PermanentLoadError(f"{where}{place}: {message}")
