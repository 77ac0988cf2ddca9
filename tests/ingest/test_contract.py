"""The load contract, once, over every shipped program: the Python loader reading CSV itself, and every
declared reader program whose rows it loads. The programs come from the declarations (one shipped source
per program), and the inputs from the declared format: a new source joins by its declaration alone."""

from __future__ import annotations

import csv
import json
import os
import secrets
import signal
import subprocess
import time
from pathlib import Path

import pytest

from devtools import peak_memory, typescript
from devtools.ports import free_port
from ingest_raw.catalog import SOURCES
from ingest_raw.declarations import CsvFormat, Source, is_url
from ingest_raw.errors import EXIT_INTERRUPTED, EXIT_PERMANENT, EXIT_TRANSIENT
from ingest_raw.loader import PAUSE_ENV
from ingest_raw.reader import program_dir, resolve_package_location
from shared import postgres
from tests.ingest.ingest_helpers import (
    PROGRAM_TIMEOUT,
    LineWatcher,
    csv_rows,
    fingerprint,
    http_server,
    loader_sessions,
    program_env,
    run_source,
    self_signed_tls,
    serve_file,
    sessions_waiting,
    source_command,
    start_source,
    wait_until,
)
from tests.ingest.test_ingest_interrupt import commits_wait_for_a_standby  # noqa: F401 (a fixture)
from tests.process_tools import processes_mentioning, wait_until_gone


def _remote(source: Source) -> bool:
    return is_url(source.input)


def _programs() -> dict[str, Source]:
    """One shipped source per program: the first declared with a local input (tests serve no remote
    one), else the first declared (its tests are skipped, saying why)."""
    programs: dict[str, Source] = {}
    for source in SOURCES.values():
        program = " ".join(source.program.command) if source.program else "python"
        if program not in programs or (_remote(programs[program]) and not _remote(source)):
            programs[program] = source
    return programs


PROGRAMS = _programs()
#: Peak resident memory any one process of a load may reach on a hostile input.
MEMORY_BOUND = 256 << 20


@pytest.fixture(params=list(PROGRAMS.values()), ids=list(PROGRAMS))
def source(request) -> Source:
    if _remote(request.param):
        pytest.skip(
            f"{request.param.name}: every source of this program reads a URL; declare one with a local sample"
        )
    if request.param.program is not None:
        if typescript.node() is None:
            pytest.skip("node is not installed")
        typescript.build()
    return request.param


def declared_input(source: Source) -> Path:
    if source.input.startswith("package:"):
        return resolve_package_location(source.input)
    return program_dir() / source.input if source.program else Path(source.input)


def bad_input(source: Source, folder: Path) -> tuple[Path, str]:
    """An input the declared format refuses, and the place its error must name."""
    path = folder / "bad"
    if isinstance(source.format, CsvFormat):
        path.write_text("not_a_column\nvalue\n")
        return path, f"{path} line 1 (header)"
    path.write_text('{\n  "version": "2.0",\n  "version": "2.0"\n}\n')
    return path, f'{path} line 3, column 3: key "version" appears twice'


def test_loads_and_reloads_to_the_same_rows(source, fresh_warehouse):
    first = run_source(fresh_warehouse, source.name)
    assert first.returncode == 0, first.stderr
    loaded = fingerprint(fresh_warehouse, source.table)
    assert loaded[0] > 0
    assert f"loaded raw.{source.table}: {loaded[0]} rows (previously 0)" in first.stderr
    again = run_source(fresh_warehouse, source.name)
    assert again.returncode == 0, again.stderr
    assert fingerprint(fresh_warehouse, source.table) == loaded


def test_bad_input_exits_65_naming_the_source_and_place(source, fresh_warehouse, tmp_path):
    assert run_source(fresh_warehouse, source.name).returncode == 0
    before = fingerprint(fresh_warehouse, source.table)
    path, place = bad_input(source, tmp_path)
    result = run_source(fresh_warehouse, source.name, "--input", str(path))
    assert result.returncode == EXIT_PERMANENT, result.stderr
    assert f"ingest error: source '{source.name}': {place}" in result.stderr
    assert "Traceback" not in result.stderr
    assert fingerprint(fresh_warehouse, source.table) == before


def oversized_key_input(source: Source, folder: Path) -> Path:
    """One row whose first key column holds 10,000 random characters: more than a btree index entry
    may hold (about 2.7 kB), however often the load is retried."""
    key = secrets.token_hex(5000)
    path = folder / "long-key"
    if isinstance(source.format, CsvFormat):
        row = csv_rows(declared_input(source))[0] | {source.primary_key[0]: key}
        with path.open("w", newline="", encoding="utf-8") as out:
            writer = csv.DictWriter(out, source.column_names, delimiter=source.format.delimiter)
            writer.writeheader()
            writer.writerow(row)
        return path
    names = [c.name for c in source.columns if c.name not in ("value", "status")]
    ids = [name for name in names if not name.endswith("_label")]
    dimension = {
        name: {"category": {"index": [key if name == source.primary_key[0] else "a"]}} for name in ids
    }
    dataset = {"version": "2.0", "class": "dataset", "id": ids, "size": [1] * len(ids)}
    path.write_text(json.dumps(dataset | {"dimension": dimension, "value": [1.5]}))
    return path


def test_a_key_too_long_for_its_index_is_permanent_naming_the_row(source, fresh_warehouse, tmp_path):
    """Postgres refuses it with a 'program limit exceeded' error (class 54), which psycopg files under
    OperationalError like a lost connection: a retry cannot help, so 65 naming the row, not 75."""
    assert run_source(fresh_warehouse, source.name).returncode == 0
    before = fingerprint(fresh_warehouse, source.table)
    path = oversized_key_input(source, tmp_path)
    result = run_source(fresh_warehouse, source.name, "--input", str(path))
    assert result.returncode == EXIT_PERMANENT, result.stderr
    assert f"ingest error: source '{source.name}': {path} line 2" in result.stderr
    assert "index row requires" in result.stderr and "Traceback" not in result.stderr
    assert fingerprint(fresh_warehouse, source.table) == before


def test_a_relative_input_is_relative_to_where_the_loader_runs(source, fresh_warehouse, tmp_path):
    """Not to the folder a reader program runs in: there, the same name may be another file (the
    declared sample), which would load instead, silently."""
    assert run_source(fresh_warehouse, source.name).returncode == 0
    declared = fingerprint(fresh_warehouse, source.table)
    remote = is_url(source.input) or source.input.startswith("package:")
    relative = Path(declared_input(source).name if remote else source.input)
    mine = tmp_path / relative
    mine.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(source.format, CsvFormat):
        mine.write_bytes(b"".join(declared_input(source).read_bytes().splitlines(keepends=True)[:3]))
    else:
        dataset = json.loads(declared_input(source).read_text())
        mine.write_text(json.dumps(dict(dataset, value=[None] * len(dataset["value"]))))
    result = subprocess.run(
        source_command(source.name, "--input", str(relative)),
        cwd=tmp_path,
        env=program_env(fresh_warehouse),
        capture_output=True,
        text=True,
        timeout=PROGRAM_TIMEOUT,
    )
    assert result.returncode == 0, result.stderr
    assert fingerprint(fresh_warehouse, source.table) != declared


@pytest.mark.parametrize("kind", ["fifo", "device", "directory"])
def test_a_fifo_device_or_directory_is_refused_at_once(source, fresh_warehouse, tmp_path, kind):
    path = {"device": Path("/dev/zero"), "directory": tmp_path}.get(kind, tmp_path / "fifo")
    if kind == "fifo":
        os.mkfifo(path)  # no writer: opening it to read would block forever
    result = run_source(fresh_warehouse, source.name, "--input", str(path))
    assert result.returncode == EXIT_PERMANENT, result.stderr
    assert f"ingest error: source '{source.name}': {path} is a" in result.stderr
    assert "not a regular file" in result.stderr


@pytest.mark.parametrize(
    ("stage", "signum"),
    [("locked", signal.SIGINT), ("copy", signal.SIGINT), ("commit", signal.SIGINT), ("copy", signal.SIGHUP)],
)
def test_sigint_rolls_back_and_exits_130(source, fresh_warehouse, stage, signum):
    """And a hangup (the terminal closed) is a stop like Ctrl-C, not a silent death."""
    assert run_source(fresh_warehouse, source.name).returncode == 0
    before = fingerprint(fresh_warehouse, source.table)
    with postgres.connect(fresh_warehouse, autocommit=True) as conn:
        conn.execute(
            f"delete from raw.{source.table} where ctid = (select min(ctid) from raw.{source.table})"
        )
    changed = fingerprint(fresh_warehouse, source.table)
    process = start_source(fresh_warehouse, source.name, **{PAUSE_ENV: stage})
    stderr = LineWatcher(process.stderr)
    try:
        stderr.wait_for(f"paused at {stage}")
        process.send_signal(signum)
        assert process.wait(timeout=10) == EXIT_INTERRUPTED
    finally:
        process.kill()
    assert f"{source.name} interrupted, rolled back" in stderr.text()
    wait_until(lambda: loader_sessions(fresh_warehouse) == 0, 10, "the interrupted session's end")
    assert fingerprint(fresh_warehouse, source.table) == changed != before


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM, signal.SIGHUP])
def test_a_signal_while_commit_waits_reports_the_commit(source, commits_wait_for_a_standby, signum):  # noqa: F811
    settings, _ = commits_wait_for_a_standby
    process = start_source(settings, source.name)
    stderr = LineWatcher(process.stderr)
    try:
        wait_until(lambda: sessions_waiting(settings, "a.wait_event = 'SyncRep'"), 60, "COMMIT waiting")
        process.send_signal(signum)
        assert process.wait(timeout=30) == 0, stderr.text()
    finally:
        process.kill()
    assert f"{source.name} interrupted while committing; the commit had gone through" in stderr.text()
    assert "rolled back" not in stderr.text()
    assert fingerprint(settings, source.table)[0] > 0


def test_a_held_lock_fails_as_transient_naming_the_holder(source, fresh_warehouse):
    with postgres.connect(fresh_warehouse, application_name="nightly-fix-by-hand") as holder:
        holder.execute("select pg_advisory_xact_lock(hashtextextended(%s, 0))", (f"raw.{source.table}",))
        result = run_source(fresh_warehouse, source.name, "--lock-timeout", "0.5")
        holder_pid = holder.info.backend_pid
        holder.rollback()
    assert result.returncode == EXIT_TRANSIENT, result.stderr
    assert f"ingest error: source '{source.name}': raw.{source.table}: the load lock" in result.stderr
    assert f"held by pid {holder_pid} (application_name 'nightly-fix-by-hand'" in result.stderr


def test_a_wrong_password_is_permanent(source, fresh_warehouse):
    wrong = fresh_warehouse.replace(password="not-the-password", user="no_such_role")
    result = subprocess.run(
        source_command(source.name),
        env=program_env(wrong),
        capture_output=True,
        text=True,
        timeout=PROGRAM_TIMEOUT,
    )
    assert result.returncode == EXIT_PERMANENT, result.stderr
    assert f"ingest error: source '{source.name}': the warehouse at " in result.stderr
    assert "refused the connection" in result.stderr and "(check WAREHOUSE_USER)" in result.stderr


@pytest.mark.parametrize(
    "option",
    [
        ("--timeout", "1e10"),
        ("--deadline", "3e6"),
        ("--timeout", "nan"),
        ("--timeout", "0"),
        ("--lock-timeout", "nan"),
        ("--deadline", "inf"),
        ("--timeout", "-5"),
    ],
)
def test_a_wait_no_timer_can_hold_is_refused(source, fresh_warehouse, option):
    """Past 2^31 ms a JavaScript timer fires at once (a download 'timed out' before it began, 75), and
    a Python one past time_t dies with a traceback; NaN compared false to every bound; 0 meant 'declared'."""
    result = run_source(fresh_warehouse, source.name, *option)
    assert result.returncode == EXIT_PERMANENT, result.stderr
    assert f"ingest error: source '{source.name}': max_record_bytes, lock_timeout_seconds" in result.stderr
    assert "the seconds at most 2,147,483 (about 24.8 days)" in result.stderr
    assert "Traceback" not in result.stderr


def trickle(handler, data: Path) -> None:
    """Promise the whole file, then send its first 200 bytes one every 50 ms (a download that lasts)."""
    handler.send_response(200)
    handler.send_header("Content-Length", str(data.stat().st_size))
    handler.end_headers()
    for byte in data.read_bytes()[:200]:
        handler.wfile.write(bytes([byte]))
        handler.wfile.flush()
        time.sleep(0.05)


def test_an_unreachable_warehouse_stops_the_reader_and_fails_as_transient(source, fresh_warehouse):
    """The reader starts before the loader connects: when the connection fails, the error is the
    connection's and the reader, still downloading, is not left running."""
    data = declared_input(source)
    unreachable = fresh_warehouse.replace(host="127.0.0.1", port=free_port())
    with http_server(lambda handler, _: trickle(handler, data)) as (base, _):
        url = f"{base}/{data.name}"
        result = run_source(unreachable, source.name, "--input", url)
        assert processes_mentioning(url) == []
    assert result.returncode == EXIT_TRANSIENT, result.stderr
    assert f"ingest error: source '{source.name}': cannot connect to the warehouse" in result.stderr


def test_a_load_killed_while_downloading_leaves_nothing_running(source, fresh_warehouse):
    """kill -9 of the loader (the OOM killer, a lost node): the table keeps its rows and no process of
    the load runs on; a reader in its own session, still downloading, has no broken pipe to notice."""
    assert run_source(fresh_warehouse, source.name).returncode == 0
    before = fingerprint(fresh_warehouse, source.table)
    data = declared_input(source)
    with http_server(lambda handler, _: trickle(handler, data)) as (base, seen):
        url = f"{base}/{data.name}"
        process = start_source(fresh_warehouse, source.name, "--input", url)
        try:
            wait_until(lambda: seen, 30, "the download's start")
            process.kill()
            process.wait(timeout=10)
        finally:
            process.kill()
        assert wait_until_gone(url, 5) == []
    wait_until(lambda: loader_sessions(fresh_warehouse) == 0, 10, "the killed session's end")
    assert fingerprint(fresh_warehouse, source.table) == before


def test_an_https_download_trusts_a_certificate_the_environment_adds(source, fresh_warehouse, tmp_path):
    """A company's own certificate authority, added the way each runtime reads one (SSL_CERT_FILE for
    OpenSSL, NODE_EXTRA_CA_CERTS for Node), is trusted by every program's download; a URL's scheme may
    be written in capitals."""
    context, certificate = self_signed_tls(tmp_path)
    data = declared_input(source)
    with http_server(lambda handler, _: serve_file(handler, data), tls=context) as (base, _):
        result = run_source(
            fresh_warehouse,
            source.name,
            "--input",
            f"{base.replace('https://', 'HTTPS://')}/{data.name}",
            SSL_CERT_FILE=certificate,
            NODE_EXTRA_CA_CERTS=certificate,
        )
    assert result.returncode == 0, result.stderr
    assert fingerprint(fresh_warehouse, source.table)[0] > 0


def test_a_tls_handshake_that_cannot_succeed_is_permanent(source, fresh_warehouse, tmp_path):
    """A certificate that does not verify, or https to a plain http port, fails alike on every retry."""
    context, _ = self_signed_tls(tmp_path)
    data = declared_input(source)

    def respond(handler, _):
        serve_file(handler, data)

    with http_server(respond) as (base, _), http_server(respond, tls=context) as (tls_base, _):
        plain = base.replace("http://", "https://") + f"/{data.name}"
        unverified = f"{tls_base}/{data.name}"
        results = {
            url: run_source(fresh_warehouse, source.name, "--input", url, "--timeout", "5")
            for url in (plain, unverified)
        }
    for url, fragment in {plain: "wrong version number", unverified: "self-signed certificate"}.items():
        result = results[url]
        assert result.returncode == EXIT_PERMANENT, result.stderr
        assert f"ingest error: source '{source.name}': " in result.stderr
        assert f"{url}: TLS refused: " in result.stderr, result.stderr
        assert fragment in result.stderr, result.stderr
    assert fingerprint(fresh_warehouse, source.table) == (0, None)


def test_http_redirects_deadlines_and_server_errors(source, fresh_warehouse):
    data = declared_input(source)
    name = data.name

    def respond(handler, _):
        path = handler.path
        if path.startswith("/to-other-host/"):
            target = f"http://192.0.2.1/{name}"
        elif path.startswith("/to-ftp/"):
            target = f"ftp://127.0.0.1/{name}"
        elif path.startswith("/to-same-host/"):
            target = f"/{name}"
        else:
            target = None
        if target:
            handler.send_response(302)
            handler.send_header("Location", target)
            handler.send_header("Content-Length", "0")
            handler.end_headers()
        elif path.startswith("/trickle/"):
            trickle(handler, data)
        elif path.startswith("/busy/"):
            handler.send_response(500)
            handler.send_header("Content-Length", "0")
            handler.end_headers()
        else:
            serve_file(handler, data)

    with http_server(respond) as (base, _):
        cases = [
            ("to-same-host", 0, "loaded"),
            ("to-other-host", EXIT_PERMANENT, "redirects to host 192.0.2.1"),
            ("to-ftp", EXIT_PERMANENT, "only http(s) redirects are followed"),
            ("busy", EXIT_TRANSIENT, "HTTP 500"),
            ("trickle", EXIT_TRANSIENT, "not finished within 2 s"),
        ]
        for case, code, message in cases:
            url = f"{base}/{case}/{name}"
            result = run_source(
                fresh_warehouse, source.name, "--input", url, "--deadline", "2", "--timeout", "5"
            )
            assert (result.returncode, message in result.stderr) == (code, True), (case, result.stderr)
            if code:
                assert f"ingest error: source '{source.name}': " in result.stderr


def test_http_answers_no_retry_can_mend_are_permanent(source, fresh_warehouse):
    """A redirect without a Location or to no URL, a body that is not the gzip its Content-Encoding says,
    a URL carrying a password: the same on every try, so 65 naming the input, never 'connection lost'."""
    assert run_source(fresh_warehouse, source.name).returncode == 0
    before = fingerprint(fresh_warehouse, source.table)
    name = declared_input(source).name

    def respond(handler, _):
        case = handler.path.split("/")[1]
        handler.send_response(302 if "location" in case else 200)
        if case == "bad-location":
            handler.send_header("Location", "http://[::1/")
        if case == "corrupt-gzip":
            handler.send_header("Content-Encoding", "gzip")
        body = b"this is not gzip" * 4 if case == "corrupt-gzip" else b""
        handler.send_header("Content-Length", str(len(body)))
        handler.end_headers()
        handler.wfile.write(body)

    with http_server(respond) as (base, _):
        port = base.rsplit(":", 1)[1]
        for case in ("no-location", "bad-location", "corrupt-gzip", "password"):
            url = f"{base}/{case}/{name}"
            if case == "password":
                url = f"http://user:secret@127.0.0.1:{port}/ok/{name}"
            result = run_source(fresh_warehouse, source.name, "--input", url, "--timeout", "5")
            assert result.returncode == EXIT_PERMANENT, (case, result.stderr)
            assert f"ingest error: source '{source.name}': " in result.stderr, (case, result.stderr)
            assert "connection lost" not in result.stderr, (case, result.stderr)
            assert "secret" not in result.stderr, result.stderr  # error lines reach logs and alerts
    assert fingerprint(fresh_warehouse, source.table) == before


def test_a_chunked_download_cut_short_is_transient(source, fresh_warehouse):
    """A server (or a proxy) that dies mid-body after 'Connection: close' ends the connection where a
    chunk ends: the body lacks its last chunk, so the download was cut; not a complete but bad input."""
    assert run_source(fresh_warehouse, source.name).returncode == 0
    before = fingerprint(fresh_warehouse, source.table)
    data = declared_input(source)
    half = data.read_bytes()[: data.stat().st_size // 2]

    def respond(handler, _):
        handler.protocol_version = "HTTP/1.1"
        handler.send_response(200)
        handler.send_header("Transfer-Encoding", "chunked")
        handler.send_header("Connection", "close")
        handler.end_headers()
        handler.wfile.write(b"%x\r\n%s\r\n" % (len(half), half))  # and no last chunk

    with http_server(respond) as (base, _):
        result = run_source(fresh_warehouse, source.name, "--input", f"{base}/{data.name}", "--timeout", "5")
    assert result.returncode == EXIT_TRANSIENT, result.stderr
    assert f"ingest error: source '{source.name}': " in result.stderr
    assert fingerprint(fresh_warehouse, source.table) == before


def hostile_input(source: Source, folder: Path) -> Path:
    """About 16 MiB the declared format cannot load, found out only at its end: a CSV record of
    nothing but delimiters, or a JSON-stat value array of 4 million cells over dimensions of one."""
    path = folder / "hostile"
    with path.open("wb") as out:
        if isinstance(source.format, CsvFormat):
            out.write(",".join(source.column_names).encode() + b"\n")
            out.write(source.format.delimiter.encode() * (16 << 20))
        else:
            names = [c.name for c in source.columns if c.name not in ("value", "status")]
            ids = [name for name in names if not name.endswith("_label")]
            dimension = {name: {"category": {"index": ["a"]}} for name in ids}
            head = {
                "version": "2.0",
                "class": "dataset",
                "id": ids,
                "size": [1] * len(ids),
                "dimension": dimension,
            }
            out.write(json.dumps(head)[:-1].encode() + b', "value": [')
            out.write(b"1.5," * (4 << 20) + b"1.5]}")
    return path


def test_memory_stays_bounded_on_a_hostile_input(source, fresh_warehouse, tmp_path):
    command = source_command(source.name, "--input", str(hostile_input(source, tmp_path)))
    measured = peak_memory.run(command, program_env(fresh_warehouse), timeout=PROGRAM_TIMEOUT)
    assert measured.returncode == EXIT_PERMANENT, measured.stderr
    assert f"ingest error: source '{source.name}': " in measured.stderr
    assert measured.peak_rss_bytes < MEMORY_BOUND, f"peak {measured.peak_rss_bytes >> 20} MiB"


def long_field_input(source: Source, folder: Path) -> tuple[Path, int | None]:
    """Four rows sharing one 40 MiB text value, well under max_record_bytes: in a text column outside
    the key (a JSON-stat label, a CSV field), loadable; else in a key column, which the warehouse
    refuses (a key that long is over its index's limit). Returns the input and the rows it loads,
    None when refused."""
    path = folder / "long-field"
    long = "L" * (40 << 20)
    texts = [c.name for c in source.columns if c.type == "text" and c.name not in source.primary_key]
    if isinstance(source.format, CsvFormat):
        text = (texts or [c.name for c in source.columns if c.type == "text"])[0]
        key = next((name for name in source.primary_key if name != text), None)
        row = csv_rows(declared_input(source))[0]
        with path.open("w", newline="", encoding="utf-8") as out:
            writer = csv.DictWriter(out, source.column_names, delimiter=source.format.delimiter)
            writer.writeheader()
            for number in range(4):
                writer.writerow(row | ({key: f"K{number}"} if key else {}) | {text: long})
        return path, 4 if texts else None
    names = [c.name for c in source.columns if c.name not in ("value", "status")]
    ids = [name for name in names if not name.endswith("_label")]
    labelled = [name.removesuffix("_label") for name in texts if name.endswith("_label")]
    dimension = {name: {"category": {"index": ["a"]}} for name in ids}
    holder = (labelled or ids)[0]
    if labelled:
        dimension[holder]["category"]["label"] = {"a": long}
    else:
        dimension[holder]["category"]["index"] = [long]
    varying = next(name for name in reversed(ids) if name != holder)  # four rows, one long value
    dimension[varying]["category"]["index"] = ["k0", "k1", "k2", "k3"]
    size = [4 if name == varying else 1 for name in ids]
    dataset = {"version": "2.0", "class": "dataset", "id": ids, "size": size}
    path.write_text(json.dumps(dataset | {"dimension": dimension, "value": [1.5] * 4}))
    return path, 4 if labelled else None


def test_memory_stays_bounded_on_a_long_value_repeated(source, fresh_warehouse, tmp_path):
    """A 40 MiB value in every row: each process holds it a bounded number of times, not once per row
    written (a reader's rows as text, left for a lazy garbage collector, took 770 MB for four)."""
    path, rows = long_field_input(source, tmp_path)
    command = source_command(source.name, "--input", str(path))
    measured = peak_memory.run(command, program_env(fresh_warehouse), timeout=PROGRAM_TIMEOUT)
    if rows is None:
        assert measured.returncode == EXIT_PERMANENT, measured.stderr
        assert f"ingest error: source '{source.name}': " in measured.stderr
    else:
        assert measured.returncode == 0, measured.stderr
        assert fingerprint(fresh_warehouse, source.table)[0] == rows
    assert measured.peak_rss_bytes < MEMORY_BOUND, f"peak {measured.peak_rss_bytes >> 20} MiB"
