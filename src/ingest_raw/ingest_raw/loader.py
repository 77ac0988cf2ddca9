"""Load one source into Postgres `raw.<table>` atomically.

Everything happens in ONE transaction: lock, delete the rows being replaced (the whole table, or the
partitions asked for), COPY the input straight into the table (its primary key and types check every row as it
arrives, and Postgres names the line and column of a bad one), validate, commit. Until the commit,
readers see the previous rows (MVCC); a crash, kill -9 or SIGINT leaves the previous or the new rows,
never part. A signal or a lost connection while COMMIT is under way is not taken for a rollback: the
transaction's fate is asked from the server on a new connection (`pg_xact_status`).
Deleting rather than swapping tables keeps views that marts build on `raw.<table>` valid.
"""

from __future__ import annotations

import collections
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import psycopg
from psycopg import errors, sql

from ingest_raw import csvstream
from ingest_raw.declarations import SCHEMA, CsvFormat, DeclarationError, Source, describe_partitions
from ingest_raw.errors import (
    CommitOutcomeUnknown,
    LoadError,
    OutOfMemoryLoadError,
    PermanentLoadError,
    TransientLoadError,
    shorten,
)
from ingest_raw.reader import STDIN, InputStream, program_dir, reader_env
from shared import postgres
from shared.signals import STOP_SIGNALS

#: The CSV every reader program writes.
READER_CSV = CsvFormat()
#: Test hook: the stage name at which the program stops and waits to be killed (see `pause_if_asked`).
PAUSE_ENV = "INGEST_PAUSE_AT"
STAGES = ("locked", "copy", "validate", "commit")
#: How a load's sessions show in pg_stat_activity (and in a lock holder's description).
APPLICATION_NAME = "ingest-raw"

#: format_type() spelling of the declared column types.
_CATALOG_TYPES = {"timestamptz": "timestamp with time zone", "timestamp": "timestamp without time zone"}
_TIME_TYPES = frozenset({"date", "timestamp", "timestamptz"})
_COPY_CONTEXT = re.compile(r"line (\d+)(?:, column (\w+))?")
_SAMPLE = 10
#: SQLSTATEs a retry may clear, by class (08 connection, 40 rollback, 53 resources, 55 object in use or
#: lock not available, 57 operator intervention: cancel, shutdown, 58 system error) or one by one (the
#: server's idle-in-transaction and transaction timeouts). Anything else, 54 "program limit exceeded"
#: (an index row too big) included, is the data's or the schema's: permanent.
_TRANSIENT_SQLSTATE_CLASSES = {"08", "40", "53", "55", "57", "58"}
_TRANSIENT_SQLSTATES = {"25P03", "25P04"}
#: Seconds to learn a cut-off commit's outcome (a new connection, then waiting while still in progress).
_OUTCOME_SECONDS = 10.0


@dataclass(frozen=True)
class LoadReport:
    source: str
    table: str
    #: The partitions loaded, in the order asked; empty for a whole-table load.
    partition_keys: tuple[str, ...]
    input: str
    rows_loaded: int
    #: Rows loaded per partition key (empty for a whole-table load).
    partition_rows: Mapping[str, int]
    #: Rows in the whole table after the load (more than rows_loaded when partitions were loaded).
    table_rows: int
    previous_rows: int
    rows_rejected: int
    rejections: tuple[str, ...]
    input_lines: int
    bytes_read: int
    content_bytes: int
    checksum: str
    seconds: float
    #: Set when a signal arrived while COMMIT was under way and the commit went through nonetheless.
    interrupted_after_commit: bool = False

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
    stream: InputStream,
    *,
    partition_keys: Sequence[str] = (),
) -> LoadReport:
    """Replace `raw.<table>` (or those of its partitions) by `stream` (`reader.open_source`); raise
    LoadError leaving the table as it was. Several partitions load in one pass over the input and one
    transaction."""
    try:
        return _load(source, settings, stream, tuple(partition_keys))
    except MemoryError:
        pass  # leave the handler first: its traceback keeps the frames, and their buffers, alive
    limit = csvstream.describe_size(source.max_record_bytes)
    raise OutOfMemoryLoadError(
        f"{_where(stream)}: ran out of memory (records may be up to {limit}, the source's "
        f"max_record_bytes); the table keeps its previous rows"
    )


def _where(stream: InputStream) -> str:
    return "standard input" if stream.description == STDIN else stream.description


def _load(
    source: Source, settings: postgres.WarehouseSettings, stream: InputStream, partition_keys: tuple[str, ...]
) -> LoadReport:
    """Connects and takes the lock before reading the header: a reader program (started already)
    parses its input meanwhile."""
    started = time.perf_counter()
    input, where = stream.description, _where(stream)
    partition = _partition_filter(source, partition_keys)
    committed = interrupted = False
    try:
        with _connect(settings) as conn:
            rejections = _Rejections(source, conn, where)
            xid = None  # set once only COMMIT remains
            try:
                with conn.transaction():
                    conn.execute(
                        sql.SQL("set local lock_timeout = {}").format(
                            # At least 1 ms: Postgres reads 0 as "wait for ever".
                            sql.Literal(f"{max(1, round(source.lock_timeout_seconds * 1000))}ms")
                        )
                    )
                    # The same input gives the same rows whatever the server's or the client's (PGTZ,
                    # PGDATESTYLE, PGOPTIONS) settings: a timestamp without a zone is UTC, 01/02/2013 is
                    # January 2, IST is Israel's +02 (Postgres's default abbreviations).
                    conn.execute("set local timezone = 'UTC'")
                    conn.execute("set local datestyle = 'ISO, MDY'")
                    conn.execute("set local timezone_abbreviations = 'Default'")
                    table = sql.Identifier(SCHEMA, source.table)
                    _ensure_table(conn, source)
                    _lock(conn, source, partition_keys)
                    pause_if_asked("locked")
                    # What the delete removed is what was there: the lock keeps other loads out.
                    previous = conn.execute(sql.SQL("delete from {}").format(table) + partition).rowcount
                    header, rest = csvstream.split_header(
                        stream.chunks(), rows_format(source), where, source.max_record_bytes
                    )
                    columns = _header_columns(source, header.names, where)
                    records = csvstream.Records(
                        rest,
                        rows_format(source),
                        where,
                        columns,
                        source.max_record_bytes,
                        _time_columns(source),
                    )
                    rows = _copy(
                        conn, source, table, columns, header, records, _copy_filter(source, partition_keys)
                    )
                    table_rows = _count(conn, table, sql.SQL("")) if partition_keys else rows
                    partition_rows = _partition_rows(conn, source, table, partition_keys, partition)
                    pause_if_asked("validate")
                    rejections.check()
                    _check_not_empty(source, where, rows, partition_rows)
                    pause_if_asked("commit")
                    xid = conn.execute("select pg_current_xact_id()::text").fetchone()[0]
                committed = True
            except (KeyboardInterrupt, psycopg.Error) as error:
                if xid is None or not was_committed(settings, xid, error):
                    if isinstance(error, KeyboardInterrupt):
                        raise
                    raise _load_error(error, source, where, input) from error
                committed = interrupted = True
    except KeyboardInterrupt:
        if not committed:
            raise
        interrupted = True  # while closing the connection: the commit is done
    return LoadReport(
        source=source.name,
        table=f"{SCHEMA}.{source.table}",
        partition_keys=partition_keys,
        input=input,
        rows_loaded=rows,
        partition_rows=partition_rows,
        table_rows=table_rows,
        previous_rows=previous,
        rows_rejected=len(rejections.messages),
        rejections=tuple(rejections.messages[:_SAMPLE]),
        input_lines=records.lines,
        bytes_read=stream.bytes_read,
        content_bytes=stream.content_bytes,
        checksum=stream.checksum,
        seconds=time.perf_counter() - started,
        interrupted_after_commit=interrupted,
    )


def was_committed(settings: postgres.WarehouseSettings, xid: str, cause: BaseException) -> bool:
    """Whether the transaction whose COMMIT was cut off by `cause` committed, asked on a new connection
    with further signals ignored (the stop they ask for is under way); CommitOutcomeUnknown when the
    server cannot say."""
    handlers = {signum: signal.signal(signum, signal.SIG_IGN) for signum in STOP_SIGNALS}
    what = "a signal" if isinstance(cause, KeyboardInterrupt) else f"an error ({shorten(str(cause))})"
    try:
        deadline = time.monotonic() + _OUTCOME_SECONDS
        with postgres.connect(settings, application_name=APPLICATION_NAME, connect_timeout=5) as conn:
            while (status := _xact_status(conn, xid)) == "in progress" and time.monotonic() < deadline:
                time.sleep(0.1)
    except psycopg.Error as error:
        status = f"unknown: the warehouse could not be asked ({shorten(str(error).strip())})"
    finally:
        for signum, handler in handlers.items():
            signal.signal(signum, handler)
    if status in ("committed", "aborted"):
        return status == "committed"
    raise CommitOutcomeUnknown(
        f"{what} cut off COMMIT of transaction {xid} and its outcome is {status}; the table holds either "
        f"the previous or the new rows, never part of them: re-running the load is safe"
    )


def _xact_status(conn: psycopg.Connection, xid: str) -> str:
    status = conn.execute("select pg_xact_status(%s::xid8)", (xid,)).fetchone()[0]
    conn.rollback()
    return status or "unknown (too old to tell)"


def create_table_sql(source: Source) -> sql.Composed:
    columns = [sql.SQL("{} {}").format(sql.Identifier(col.name), sql.SQL(col.type)) for col in source.columns]
    if source.primary_key:
        key = sql.SQL(", ").join(map(sql.Identifier, source.primary_key))
        columns.append(sql.SQL("primary key ({})").format(key))
    return sql.SQL("create table if not exists {} ({})").format(
        sql.Identifier(SCHEMA, source.table), sql.SQL(", ").join(columns)
    )


def _row_origin(source: Source, input: str, line: int) -> str:
    """ " (cell 17 (region=R01, …))": where a reader program's row `line` came from in its input, as
    the program says (`--describe-row`); nothing for CSV read directly, whose lines are the input's."""
    if source.program is None or input == STDIN:
        return ""
    command = [*source.program.command, "--input", input, "--describe-row", str(line - 1)]
    env = reader_env(source, input)
    try:
        done = subprocess.run(command, cwd=program_dir(), env=env, capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired):
        return ""
    return f" ({shorten(done.stdout.strip())})" if done.returncode == 0 and done.stdout.strip() else ""


def rows_format(source: Source) -> CsvFormat:
    """The CSV the loader reads: the declared one, or what every reader program writes (comma, double
    quote, an empty unquoted field for NULL: a quoted empty field is an empty string)."""
    return source.format if isinstance(source.format, CsvFormat) else READER_CSV


def _connect(settings: postgres.WarehouseSettings) -> psycopg.Connection:
    try:
        return postgres.connect(settings, application_name=APPLICATION_NAME)
    except postgres.WarehouseNotConfigured as error:  # refused for its settings: a retry cannot help
        raise PermanentLoadError(str(error)) from error
    except psycopg.OperationalError as error:
        message = shorten(str(error).strip())
        raise TransientLoadError(f"cannot connect to the warehouse: {message}") from error


def _partition_filter(source: Source, partition_keys: tuple[str, ...]) -> sql.Composable:
    """` where (year = 2013 and month = 1) or (…)`: the rows of those partitions (COPY drops the others)."""
    if not partition_keys:
        return sql.SQL("")
    if source.partition is None:
        got = shorten(describe_partitions(partition_keys))
        raise PermanentLoadError(f"not partitioned; got partition {got}")
    if len(set(partition_keys)) != len(partition_keys):
        raise PermanentLoadError(f"partition keys repeated: {shorten(' '.join(partition_keys))}")
    return sql.SQL(" where ") + _partition_condition(source, partition_keys)


def _partition_condition(source: Source, partition_keys: tuple[str, ...]) -> sql.Composable:
    each = []
    for key in partition_keys:
        try:
            values = source.partition.values(key)
        except DeclarationError as error:
            raise PermanentLoadError(str(error)) from error
        conditions = [
            sql.SQL("{} = {}").format(sql.Identifier(column), sql.Literal(value))
            for column, value in zip(source.partition.columns, values, strict=True)
        ]
        each.append(sql.SQL("(") + sql.SQL(" and ").join(conditions) + sql.SQL(")"))
    return sql.SQL("(") + sql.SQL(" or ").join(each) + sql.SQL(")")


#: Marks the error COPY raises for a row of no declared partition (see `_copy_filter`).
_NO_PARTITION = "ingest: row of no partition: "


def _copy_filter(source: Source, partition_keys: tuple[str, ...]) -> sql.Composable:
    """COPY's WHERE for a partitioned source: the rows of the partitions asked for (all, for a whole-table
    load), and an error naming its line for a row of no declared partition (a NULL, month 13, a year past
    the declared end): no partition load would ever load it, nor replace it after a whole-table load."""
    if source.partition is None:
        return sql.SQL("")
    year, month = map(sql.Identifier, source.partition.columns)
    first = tuple(map(int, source.partition.start.split("-")[:2]))
    end = tuple(map(int, source.partition.end.split("-")[:2]))
    declared = sql.SQL(
        "coalesce(({y}, {m}) >= ({fy}, {fm}) and ({y}, {m}) < ({ey}, {em}) and {m} between 1 and 12, false)"
    ).format(y=year, m=month, fy=first[0], fm=first[1], ey=end[0], em=end[1])
    wanted = _partition_condition(source, partition_keys) if partition_keys else sql.SQL("true")
    refuse = sql.SQL(
        "({marker} || 'year ' || coalesce({y}::text, 'NULL') || ', month ' || coalesce({m}::text, 'NULL'))"
        "::integer = 0"
    ).format(marker=sql.Literal(_NO_PARTITION), y=year, m=month)
    return sql.SQL(" where case when {} then {} else {} end").format(declared, wanted, refuse)


def _time_columns(source: Source) -> frozenset[str]:
    return frozenset(column.name for column in source.columns if column.type in _TIME_TYPES)


def _header_columns(source: Source, names: tuple[str, ...], where: str) -> tuple[str, ...]:
    """The header's columns in file order, when they are exactly the declared ones (any order)."""
    declared = source.column_names
    problems = []
    counts = collections.Counter(names)  # linear: a header may hold a million names
    missing = [name for name in declared if name not in counts]
    extra = [name for name in counts if name not in declared]
    repeated = sorted(name for name, count in counts.items() if count > 1)
    if missing:
        problems.append(f"missing column(s) {', '.join(missing)}")
    if extra:
        problems.append(f"unexpected column(s) {', '.join(extra)}")
    if repeated:
        problems.append(f"repeated column(s) {', '.join(repeated)}")
    if problems:
        raise PermanentLoadError(
            f"{where} line 1 (header): {shorten('; '.join(problems))}; "
            f"expected the columns {', '.join(declared)}"
        )
    return names


def _ensure_table(conn: psycopg.Connection, source: Source) -> None:
    """Create the table on first load (inside the load's transaction, holding the table lock alone, so a
    failed first load leaves nothing); refuse a table whose columns or primary key no longer match the
    declaration (the key is what keeps duplicates out). The table is locked (ROW EXCLUSIVE, as the DELETE
    and COPY would) before its columns are read: a DROP or ALTER from elsewhere, while the load waits
    for its load lock, then waits for the load instead of changing the table under it."""
    name = f'{SCHEMA}."{source.table}"'
    lock = sql.SQL("lock table {} in row exclusive mode").format(sql.Identifier(SCHEMA, source.table))
    try:
        with conn.transaction():
            conn.execute(lock)
    except errors.UndefinedTable:
        _acquire(conn, source, "pg_advisory_xact_lock", _table_lock_key(source))
        conn.execute(create_table_sql(source))
        conn.execute(lock)
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
            f"{SCHEMA}.{source.table} exists with columns ({shown}) and primary key "
            f"({', '.join(key or [])}), which differ from the declaration; migrate or drop the table"
        )


def _lock(conn: psycopg.Connection, source: Source, partition_keys: tuple[str, ...]) -> None:
    """Serialize loads of the same rows: a partition load shares the table lock and holds its partitions'
    (taken in key order, so two loads of overlapping ranges cannot deadlock); a full load holds the
    table lock alone. Transaction-scoped, so a dead process leaves no lock. Waits
    at most the declared lock timeout, then fails as transient naming the sessions holding the lock."""
    table_key = _table_lock_key(source)
    locks = [("pg_advisory_xact_lock", table_key)]
    if partition_keys:
        locks = [("pg_advisory_xact_lock_shared", table_key)] + [
            ("pg_advisory_xact_lock", f"{table_key}/{key}") for key in sorted(partition_keys)
        ]
    for function, key in locks:
        _acquire(conn, source, function, key)


def _acquire(conn: psycopg.Connection, source: Source, function: str, key: str) -> None:
    try:
        with conn.transaction():
            conn.execute(
                sql.SQL("select {}(hashtextextended(%s, 0))").format(sql.Identifier(function)), (key,)
            )
    except errors.LockNotAvailable as error:
        holders = "; ".join(_lock_holders(conn, key)) or "a session that has ended since"
        raise TransientLoadError(
            f"{SCHEMA}.{source.table}: the load lock {key!r} was not granted within "
            f"{source.lock_timeout_seconds:g} s (the source's lock_timeout_seconds); held by {holders}"
        ) from error


def _lock_holders(conn: psycopg.Connection, key: str) -> list[str]:
    """The sessions holding the advisory lock of `key` (a bigint lock shows as classid, objid halves)."""
    rows = conn.execute(
        "select a.pid, a.application_name, a.usename, a.client_addr, a.state, a.xact_start "
        "from pg_locks l join pg_stat_activity a using (pid), "
        "    (select hashtextextended(%s, 0) as k) key "
        "where l.locktype = 'advisory' and l.granted and l.objsubid = 1 "
        "and l.database = (select oid from pg_database where datname = current_database()) "
        "and l.classid::bigint = (key.k >> 32) & 4294967295 and l.objid::bigint = key.k & 4294967295 "
        "order by a.pid",
        (key,),
    ).fetchall()
    return [
        f"pid {pid} (application_name {app!r}, user {user}"
        + (f", from {client}" if client else "")
        + (f", {state}" if state else "")
        + (f", transaction started {started:%Y-%m-%d %H:%M:%S %Z}" if started else "")
        + ")"
        for pid, app, user, client, state, started in rows
    ]


def _table_lock_key(source: Source) -> str:
    return f"{SCHEMA}.{source.table}"


def _partition_rows(
    conn: psycopg.Connection,
    source: Source,
    table: sql.Identifier,
    partition_keys: tuple[str, ...],
    partition: sql.Composable,
) -> dict[str, int]:
    if not partition_keys:
        return {}
    columns = sql.SQL(", ").join(map(sql.Identifier, source.partition.columns))
    query = (
        sql.SQL("select {}, count(*) from {}").format(columns, table)
        + partition
        + sql.SQL(" group by {}").format(columns)
    )
    counts = {tuple(row[:-1]): row[-1] for row in conn.execute(query)}
    return {key: counts.get(source.partition.values(key), 0) for key in partition_keys}


def _check_not_empty(source: Source, where: str, rows: int, partition_rows: Mapping[str, int]) -> None:
    """At least one row, and one in every partition asked for (unless the source allows empty loads)."""
    if source.allow_empty:
        return
    empty = [key for key, count in partition_rows.items() if count == 0]
    if empty:
        shown = ", ".join(empty) if len(empty) <= 3 else f"{empty[0]} … {empty[-1]} ({len(empty)} partitions)"
        scope = f"partition {shown}"
        raise PermanentLoadError(f"{where}: no rows in {scope}; expected at least one")
    if rows == 0:
        raise PermanentLoadError(f"{where}: no rows in the input; expected at least one")


def _count(conn: psycopg.Connection, table: sql.Identifier, partition: sql.Composable) -> int:
    return conn.execute(sql.SQL("select count(*) from {}").format(table) + partition).fetchone()[0]


def _copy(
    conn: psycopg.Connection,
    source: Source,
    table: sql.Identifier,
    columns: tuple[str, ...],
    header: csvstream.Header,
    records: Iterable[bytes],
    partition: sql.Composable,
) -> int:
    """COPY the records; returns the rows inserted. The header goes along (HEADER true) so the line
    numbers Postgres reports are the file's."""
    fmt = rows_format(source)
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
    with conn.cursor() as cursor:
        with cursor.copy(statement + partition) as copy:
            copy.write(header.raw)
            for number, chunk in enumerate(records):
                copy.write(chunk)
                if number == 0:
                    pause_if_asked("copy")
        return cursor.rowcount


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
            self.messages.append(shorten(diag.message_primary))

    def check(self) -> None:
        if len(self.messages) > self._allowed:
            first = "; ".join(self.messages[:3])
            raise PermanentLoadError(
                f"{self._where}: {len(self.messages)} rows rejected, more than the {self._allowed} allowed; "
                f"first: {first}"
            )


def _load_error(error: psycopg.Error, source: Source, where: str, input: str) -> LoadError:
    """A database error as a LoadError naming the line, the column and what was expected. Postgres
    quotes the offending value, whatever its size: every piece is shortened."""
    diag = error.diag
    state = diag.sqlstate
    if (
        (state is None and isinstance(error, psycopg.OperationalError))  # the connection, not the server
        or (state or "")[:2] in _TRANSIENT_SQLSTATE_CLASSES
        or state in _TRANSIENT_SQLSTATES
    ):
        return TransientLoadError(f"{where}: warehouse error: {shorten(diag.message_primary or str(error))}")
    place = ""
    context = _COPY_CONTEXT.search(diag.context or "")
    if context:
        line, column = context.groups()
        place = (
            f" line {line}" + _row_origin(source, input, int(line)) + (f", column {column}" if column else "")
        )
    message = shorten(diag.message_primary or str(error))
    if _NO_PARTITION in message and source.partition is not None:
        found = message.split(_NO_PARTITION, 1)[1].rstrip('"')
        return PermanentLoadError(
            f"{where}{place}: the row belongs to no partition ({found}); the source's partitions are the "
            f"months {source.partition.start} (included) to {source.partition.end} (excluded)"
        )
    if isinstance(error, errors.UniqueViolation):
        message = f"duplicate primary key: {shorten(diag.message_detail or message)}"
    elif isinstance(error, errors.ProgramLimitExceeded) and source.primary_key:
        message = f"{message} (a value of the primary key ({', '.join(source.primary_key)}) too long?)"
    elif isinstance(error, errors.NotNullViolation):
        message = f"primary key column {diag.column_name} is null; {message}"
    elif context and context.group(2) and diag.sqlstate and diag.sqlstate.startswith("22"):
        column = context.group(2)
        if column in source.column_names:
            message = f"{message}; expected {source.column(column).type}"
    return PermanentLoadError(f"{where}{place}: {message}")
