"""Helpers for the ingest tests: run the source program, fingerprint tables, materialize through Dagster."""

from __future__ import annotations

import contextlib
import csv
import http.server
import io
import ipaddress
import os
import re
import ssl
import subprocess
import sys
import threading
import time
import zipfile
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from unittest import mock

import dagster as dg
import psutil
import pytest
from dagster._core.storage.tags import ASSET_PARTITION_RANGE_END_TAG, ASSET_PARTITION_RANGE_START_TAG
from psycopg import sql

from ingest_raw.catalog import SOURCES
from ingest_raw.declarations import Source
from ingest_raw.factory import source_asset
from ingest_raw.launcher import LOADER
from ingest_raw.loader import APPLICATION_NAME
from ingest_raw.reader import resolve_package_location
from shared import postgres
from shared.resources import PostgresWarehouse
from tests.process_tools import stops_as_from_a_terminal

PROGRAM_TIMEOUT = 120
Handler = http.server.BaseHTTPRequestHandler
WEATHER_HEADER = (
    "origin,year,month,day,hour,temp,dewp,humid,wind_dir,wind_speed,wind_gust,precip,pressure,visib,time_hour"
)


def weather_rows(count: int, origin: str = "EWR", temp: str = "39.02") -> list[str]:
    """Hourly rows from 2013-01-01 01:00 local (06:00 UTC), NA in wind_gust like the real file."""
    rows = []
    for offset in range(count):
        local = datetime(2013, 1, 1) + timedelta(hours=offset)
        utc = local + timedelta(hours=6)
        rows.append(
            f"{origin},{local.year},{local.month},{local.day},{local.hour},{temp},26.06,59.37,270,10.35702,"
            f"NA,0,1012,10,{utc:%Y-%m-%dT%H:%M:%SZ}"
        )
    return rows


def weather_csv(rows: list[str], header: str = WEATHER_HEADER) -> bytes:
    return ("\n".join([header, *rows]) + "\n").encode()


def program_env(settings: postgres.WarehouseSettings, **extra: str) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith("DAGSTER_PIPES")}
    return env | settings.to_env() | extra


def source_command(name: str, *args: str) -> list[str]:
    return [*LOADER, name, *args]


def run_source(
    settings: postgres.WarehouseSettings, name: str, *args: str, **env: str
) -> subprocess.CompletedProcess:
    return subprocess.run(
        source_command(name, *args),
        env=program_env(settings, **env),
        capture_output=True,
        text=True,
        timeout=PROGRAM_TIMEOUT,
    )


def fingerprint(settings: postgres.WarehouseSettings, table: str, where: str = "") -> tuple[int, str | None]:
    """Row count and a checksum of every row's text (order independent); (0, None) when missing."""
    with postgres.connect(settings) as conn:
        if conn.execute("select to_regclass(%s)", (f"raw.{table}",)).fetchone()[0] is None:
            return 0, None
        query = sql.SQL("select count(*), md5(string_agg(t::text, '|' order by t::text)) from {} t").format(
            sql.Identifier("raw", table)
        )
        return conn.execute(query + sql.SQL(where)).fetchone()


def package_file(source: str) -> Path:
    return resolve_package_location(SOURCES[source].input)


def csv_rows(path: Path) -> list[dict[str, str]]:
    if path.suffix == ".zip":
        with zipfile.ZipFile(path) as archive:
            (member,) = archive.namelist()
            with archive.open(member) as raw:
                return list(csv.DictReader(io.TextIOWrapper(raw, encoding="utf-8")))
    with path.open(newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def at(source: str, path: Path | str) -> Source:
    """The shipped declaration of `source`, reading `path` instead."""
    return replace(SOURCES[source], input=str(path))


def materialize(
    source: Source,
    settings: postgres.WarehouseSettings,
    partition_key: str | None = None,
    partition_range: tuple[str, str] | None = None,
    **asset_options,
) -> dg.ExecuteInProcessResult:
    """One run of the source's asset: a partition, a partition range (as a backfill's single run
    tags it) or the whole table."""
    asset = source_asset(source, retry_delay_seconds=0.05, **asset_options)
    tags = {}
    if partition_range:
        start, end = partition_range
        tags = {ASSET_PARTITION_RANGE_START_TAG: start, ASSET_PARTITION_RANGE_END_TAG: end}
    with mock.patch.dict(os.environ, settings.to_env()):  # as a deployment sets them for its code server
        return dg.materialize(
            [asset],
            resources={"warehouse": PostgresWarehouse()},
            partition_key=partition_key,
            tags=tags,
            raise_on_error=False,
        )


def events_of(result: dg.ExecuteInProcessResult, event_type: str) -> list:
    return [event for event in result.all_events if event.event_type_value == event_type]


def failure_message(result: dg.ExecuteInProcessResult) -> str:
    (failure,) = events_of(result, "STEP_FAILURE")
    return failure.event_specific_data.error.to_string()


def self_signed_tls(folder: Path) -> tuple[ssl.SSLContext, str]:
    """A server context whose certificate, for 127.0.0.1, no authority signed, and that certificate's
    PEM file (in `folder`): trusted only where a client is told to trust it."""
    x509 = pytest.importorskip("cryptography.x509")
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(x509.oid.NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.now(UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False
        )
        .sign(key, hashes.SHA256())
    )
    cert, key_file = folder / "cert.pem", folder / "key.pem"
    cert.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key_file)
    return context, str(cert)


@contextmanager
def http_server(
    respond: Callable[[http.server.BaseHTTPRequestHandler, int], None], tls: ssl.SSLContext | None = None
) -> Iterator[tuple[str, list]]:
    """A local HTTP server on 127.0.0.1 (HTTPS with `tls`); `respond(handler, n)` answers the n-th
    request (0-based). Yields the base URL and the list of request paths seen."""
    seen: list[str] = []

    class RecordingHandler(Handler):
        def do_GET(self):
            seen.append(self.path)
            respond(self, len(seen) - 1)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), RecordingHandler)
    server.daemon_threads = True
    if tls is not None:
        server.socket = tls.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"{'https' if tls else 'http'}://127.0.0.1:{server.server_address[1]}", seen
    finally:
        server.shutdown()
        server.server_close()


def serve_file(handler: Handler, path: Path) -> None:
    data = path.read_bytes()
    handler.send_response(200)
    handler.send_header("Content-Length", str(len(data)))
    handler.end_headers()
    handler.wfile.write(data)


def start_source(settings: postgres.WarehouseSettings, name: str, *args: str, **env: str) -> subprocess.Popen:
    return subprocess.Popen(
        source_command(name, *args),
        env=program_env(settings, **env),
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=stops_as_from_a_terminal,
    )


class LineWatcher:
    """Reads a process's stream in a thread, so waiting for a line can time out instead of hanging."""

    def __init__(self, stream):
        self.lines: list[str] = []
        self._arrived = threading.Condition()
        self._ended = False
        self._thread = threading.Thread(target=self._pump, args=(stream,), daemon=True)
        self._thread.start()

    def _pump(self, stream) -> None:
        for line in stream:
            with self._arrived:
                self.lines.append(line)
                self._arrived.notify_all()
        with self._arrived:
            self._ended = True
            self._arrived.notify_all()

    def wait_for(self, marker: str, timeout: float = 60) -> str:
        def found() -> str | None:
            return next((line for line in self.lines if marker in line), None)

        with self._arrived:
            if not self._arrived.wait_for(lambda: found() or self._ended, timeout):
                raise AssertionError(f"no {marker!r} within {timeout} s; got {''.join(self.lines)!r}")
            if not found():
                raise AssertionError(f"stream ended before {marker!r}; got {''.join(self.lines)!r}")
            return found()

    def text(self, timeout: float = 10) -> str:
        self._thread.join(timeout)
        return "".join(self.lines)


def paused_pid(line: str) -> int:
    return int(re.search(r"\(pid (\d+)\)", line)[1])


def wait_until(condition: Callable[[], bool], timeout: float, what: str) -> float:
    """Poll `condition`; returns the seconds it took, fails naming `what` after `timeout`."""
    started = time.monotonic()
    while not condition():
        if time.monotonic() - started > timeout:
            raise AssertionError(f"{what} not within {timeout} s")
        time.sleep(0.05)
    return time.monotonic() - started


def loader_sessions(settings: postgres.WarehouseSettings) -> int:
    """Server sessions of source programs, and advisory locks anyone still holds."""
    with postgres.connect(settings) as conn:
        return conn.execute(
            f"select (select count(*) from pg_stat_activity where application_name = '{APPLICATION_NAME}')"
            " + (select count(*) from pg_locks where locktype = 'advisory')"
        ).fetchone()[0]


def process_gone(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


FLIGHTS_HEADER = (
    "year,month,day,dep_time,sched_dep_time,dep_delay,arr_time,sched_arr_time,arr_delay,carrier,flight,"
    "tailnum,origin,dest,air_time,distance,hour,minute,time_hour"
)


def flights_csv(rows_per_month: dict[int, int], first_flight: int = 1) -> bytes:
    """A flights-shaped CSV with the given number of rows in each 2013 month (one per day, distinct keys)."""
    lines = [FLIGHTS_HEADER]
    for month, count in rows_per_month.items():
        for day in range(1, count + 1):
            flight = first_flight + 100 * month + day
            lines.append(
                f"2013,{month},{day},517,515,2,830,819,NA,UA,{flight},N14228,EWR,IAH,227,1400,5,15,"
                f"2013-{month:02d}-{day:02d}T10:00:00Z"
            )
    return ("\n".join(lines) + "\n").encode()


def data_version(result: dg.ExecuteInProcessResult, node: str) -> str:
    (materialization,) = result.asset_materializations_for_node(node)
    return materialization.tags["dagster/data_version"]


def check_results(result: dg.ExecuteInProcessResult) -> dict:
    return {
        event.event_specific_data.check_name: event.event_specific_data
        for event in events_of(result, "ASSET_CHECK_EVALUATION")
    }


@contextmanager
def fifo_input(
    folder: Path, parts: Iterable[bytes], name: str = "input.csv"
) -> Iterator[tuple[Path, list[int]]]:
    """A named pipe fed from `parts` by a thread, so an input of any size streams without touching the
    disk. Yields its path and a one-item list holding the bytes the reader has taken (within the pipe's
    buffer and one part)."""
    path = folder / name
    os.mkfifo(path)
    written = [0]

    def pump() -> None:
        with contextlib.suppress(BrokenPipeError), open(path, "wb", buffering=0) as pipe:
            for part in parts:
                pipe.write(part)
                written[0] += len(part)

    thread = threading.Thread(target=pump, daemon=True)
    thread.start()
    try:
        yield path, written
    finally:
        # A reader that never came leaves the writer blocked in open(): come and go once to release it.
        with contextlib.suppress(OSError):
            os.close(os.open(path, os.O_RDONLY | os.O_NONBLOCK))
        thread.join(timeout=10)


RUN_SCRIPT = Path(__file__).with_name("run_to_terminate.py")


def start_run(settings: postgres.WarehouseSettings, home: Path, source: str, input: str, **env: str):
    """A real Dagster run of `source` reading `input` (run_to_terminate.py), its stderr piped."""
    env = program_env(settings, DAGSTER_HOME=str(home), SOURCE=source, SOURCE_INPUT=input, **env)
    return subprocess.Popen([sys.executable, str(RUN_SCRIPT)], env=env, stderr=subprocess.PIPE, text=True)


#: A predicate of `loader_sessions_matching`: a source program waiting for a load lock.
WAITING_FOR_A_LOAD_LOCK = "l.locktype = 'advisory' and not l.granted"


def loader_sessions_matching(condition: str) -> str:
    """The query counting source programs' sessions that match `condition`, a SQL predicate over
    pg_stat_activity `a` joined with pg_locks `l`."""
    return (
        "select count(*) from pg_stat_activity a left join pg_locks l using (pid)"
        f" where a.application_name = '{APPLICATION_NAME}' and ({condition})"
    )


def sessions_waiting(settings: postgres.WarehouseSettings, condition: str) -> bool:
    """Whether a source program's session matches `condition` (see `loader_sessions_matching`)."""
    with postgres.connect(settings) as conn:
        return bool(conn.execute(loader_sessions_matching(condition)).fetchone()[0])
