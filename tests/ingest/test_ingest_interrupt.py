"""Kill -9, SIGINT and Dagster run termination in the middle of a load: raw.weather keeps its previous
rows every time, and no session or lock is left behind."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from pathlib import Path

import dagster as dg
import psutil
import pytest
from psycopg import errors, sql

from devtools.ports import free_port
from ingest_raw.errors import (
    EXIT_INTERRUPTED,
    EXIT_OUTCOME_UNKNOWN,
    EXIT_TRANSIENT,
    CommitOutcomeUnknown,
)
from ingest_raw.loader import APPLICATION_NAME, PAUSE_ENV, STAGES, was_committed
from ingest_raw.reader import CHUNK_SIZE
from shared import postgres
from tests.ingest.ingest_helpers import (
    WAITING_FOR_A_LOAD_LOCK,
    LineWatcher,
    fingerprint,
    loader_sessions,
    paused_pid,
    process_gone,
    program_env,
    run_source,
    sessions_waiting,
    source_command,
    start_run,
    start_source,
    wait_until,
    weather_csv,
    weather_rows,
)

NEW_ROWS = 40_000  # about 4 MB: several chunks, so "paused at copy" is in the middle of the COPY


@pytest.fixture
def new_weather(tmp_path):
    path = tmp_path / "new.csv"
    path.write_bytes(weather_csv(weather_rows(NEW_ROWS, origin="LGA")))
    assert path.stat().st_size > 3 * CHUNK_SIZE
    return path


@pytest.mark.parametrize("stage", STAGES)
def test_kill_9_at_any_stage_keeps_the_previous_rows(loaded_weather, new_weather, stage):
    settings, before = loaded_weather
    process = start_source(settings, "weather", "--input", str(new_weather), **{PAUSE_ENV: stage})
    try:
        LineWatcher(process.stderr).wait_for(f"paused at {stage}")
        assert fingerprint(settings, "weather") == before  # readers see the old rows mid-load
    finally:
        process.kill()
        process.wait(timeout=10)

    wait_until(lambda: loader_sessions(settings) == 0, 10, "the killed session's end")
    assert fingerprint(settings, "weather") == before
    assert run_source(settings, "weather", "--input", str(new_weather)).returncode == 0
    assert fingerprint(settings, "weather")[0] == NEW_ROWS


def test_sigint_rolls_back_and_exits_promptly(loaded_weather, new_weather):
    settings, before = loaded_weather
    process = start_source(settings, "weather", "--input", str(new_weather), **{PAUSE_ENV: "copy"})
    stderr = LineWatcher(process.stderr)
    try:
        stderr.wait_for("paused at copy")
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=5) == EXIT_INTERRUPTED
    finally:
        process.kill()
    assert "interrupted, rolled back" in stderr.text()
    wait_until(lambda: loader_sessions(settings) == 0, 5, "the interrupted session's end")
    assert fingerprint(settings, "weather") == before


def test_sigint_while_waiting_for_the_table_lock(loaded_weather, new_weather):
    """A load blocked inside Postgres (another load holds the table) still stops on SIGINT."""
    settings, before = loaded_weather
    with postgres.connect(settings) as holder:
        holder.execute("select pg_advisory_xact_lock(hashtextextended('raw.weather', 0))")
        process = start_source(settings, "weather", "--input", str(new_weather))
        try:
            wait_until(lambda: _waiting_on_advisory_lock(settings), 30, "the load waiting for the lock")
            process.send_signal(signal.SIGINT)
            assert process.wait(timeout=5) == EXIT_INTERRUPTED
        finally:
            process.kill()
        holder.rollback()
    wait_until(lambda: loader_sessions(settings) == 0, 5, "the interrupted session's end")
    assert fingerprint(settings, "weather") == before


def _waiting_on_advisory_lock(settings) -> bool:
    return sessions_waiting(settings, WAITING_FOR_A_LOAD_LOCK)


def test_terminating_the_dagster_run_stops_the_source_program(loaded_weather, new_weather, tmp_path):
    """A run's load is a fork of the run's process (`ingest_raw.launcher`: no new interpreter); the
    run terminated (SIGINT, as a run worker learns it) while the load is in COPY stops it, rolled back."""
    settings, before = loaded_weather
    home = tmp_path / "dagster_home"
    home.mkdir()
    run = start_run(settings, home, "weather", str(new_weather), **{PAUSE_ENV: "copy"})
    child = None
    try:
        child = paused_pid(LineWatcher(run.stderr).wait_for("paused at copy"))
        assert psutil.Process(child).ppid() == run.pid
        assert psutil.Process(child).cmdline() == psutil.Process(run.pid).cmdline()
        run.send_signal(signal.SIGINT)
        wait_until(lambda: process_gone(child), 10, f"source program pid {child} exit")
        run.wait(timeout=30)
    finally:
        run.kill()
        if child and not process_gone(child):
            os.kill(child, signal.SIGKILL)
    wait_until(lambda: loader_sessions(settings) == 0, 10, "the source program's session end")
    with dg.DagsterInstance.from_config(str(home)) as instance:
        (record,) = instance.get_run_records()
    assert fingerprint(settings, "weather") == before
    assert record.dagster_run.status in (dg.DagsterRunStatus.CANCELED, dg.DagsterRunStatus.FAILURE)


def _importing(pid: int, library: str) -> bool:
    try:
        return library in Path(f"/proc/{pid}/maps").read_text()
    except OSError:
        return False


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_during_start_up_gives_the_message_and_130(fresh_warehouse, new_weather, signum):
    """Sent while the program is still importing its modules (psycopg's library is being mapped)."""
    process = start_source(fresh_warehouse, "weather", "--input", str(new_weather))
    try:
        deadline = time.monotonic() + 30
        while not _importing(process.pid, "psycopg_binary") and time.monotonic() < deadline:
            time.sleep(0.001)
        process.send_signal(signum)
        assert process.wait(timeout=10) == EXIT_INTERRUPTED
    finally:
        process.kill()
    stderr = process.stderr.read()
    assert "interrupted" in stderr and "Traceback" not in stderr, stderr
    assert fingerprint(fresh_warehouse, "weather") == (0, None)


@pytest.fixture
def commits_wait_for_a_standby(loaded_weather):
    """COMMIT in this test's database waits for a synchronous standby that never connects (other
    databases on the suite's server commit locally); undone afterwards."""
    settings, _ = loaded_weather
    server = settings.replace(dbname="postgres")
    with postgres.connect(server, autocommit=True) as admin:
        admin.execute("alter system set synchronous_standby_names = 'standby_that_never_connects'")
        admin.execute("alter system set synchronous_commit = 'local'")
        admin.execute(
            sql.SQL("alter database {} set synchronous_commit = 'on'").format(sql.Identifier(settings.dbname))
        )
        admin.execute("select pg_reload_conf()")
    try:
        yield loaded_weather
    finally:
        with postgres.connect(server, autocommit=True) as admin:
            admin.execute("alter system reset synchronous_standby_names")
            admin.execute("alter system reset synchronous_commit")
            admin.execute("select pg_reload_conf()")


def _waiting_for_the_standby(settings) -> bool:
    return sessions_waiting(settings, "a.wait_event = 'SyncRep'")


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_while_commit_waits_reports_the_commit(commits_wait_for_a_standby, new_weather, signum):
    """The commit is durable locally and waits for the standby; a stop now cannot undo it, and the
    program says so (exit 0) rather than claiming a rollback."""
    settings, _ = commits_wait_for_a_standby
    process = start_source(settings, "weather", "--input", str(new_weather))
    stderr = LineWatcher(process.stderr)
    try:
        wait_until(
            lambda: _waiting_for_the_standby(settings), 60, "the load's COMMIT waiting for the standby"
        )
        process.send_signal(signum)
        assert process.wait(timeout=30) == 0, stderr.text()
    finally:
        process.kill()
    assert "weather interrupted while committing; the commit had gone through" in stderr.text()
    assert "loaded raw.weather" in stderr.text()
    assert fingerprint(settings, "weather")[0] == NEW_ROWS


def test_the_outcome_of_a_cut_off_commit_is_asked_from_the_server(fresh_warehouse):
    with postgres.connect(fresh_warehouse) as conn:
        committed = conn.execute("select pg_current_xact_id()::text").fetchone()[0]
        conn.commit()
        aborted = conn.execute("select pg_current_xact_id()::text").fetchone()[0]
        conn.rollback()
    assert was_committed(fresh_warehouse, committed, KeyboardInterrupt())
    assert not was_committed(fresh_warehouse, aborted, KeyboardInterrupt())
    unreachable = fresh_warehouse.replace(host="127.0.0.1", port=free_port())
    with pytest.raises(
        CommitOutcomeUnknown, match="the table holds either the previous or the new rows"
    ) as error:
        was_committed(unreachable, committed, KeyboardInterrupt())
    assert error.value.exit_code == EXIT_OUTCOME_UNKNOWN


def test_a_load_that_cannot_get_its_lock_fails_as_transient_naming_the_holder(loaded_weather, new_weather):
    settings, before = loaded_weather
    with postgres.connect(settings, application_name="nightly-fix-by-hand") as holder:
        holder.execute("select pg_advisory_xact_lock(hashtextextended('raw.weather', 0))")
        result = run_source(settings, "weather", "--input", str(new_weather), "--lock-timeout", "0.5")
        holder_pid = holder.info.backend_pid
        holder.rollback()
    assert result.returncode == EXIT_TRANSIENT, result.stderr
    assert (
        "ingest error: source 'weather': raw.weather: the load lock 'raw.weather' "
        "was not granted within 0.5 s" in result.stderr
    )
    assert f"held by pid {holder_pid} (application_name 'nightly-fix-by-hand'" in result.stderr
    assert fingerprint(settings, "weather") == before


def test_terminating_the_run_while_commit_waits_records_the_materialization(
    commits_wait_for_a_standby, new_weather, tmp_path
):
    settings, _ = commits_wait_for_a_standby
    home = tmp_path / "dagster_home"
    home.mkdir()
    run = start_run(settings, home, "weather", str(new_weather))
    stderr = LineWatcher(run.stderr)
    try:
        wait_until(
            lambda: _waiting_for_the_standby(settings), 120, "the load's COMMIT waiting for the standby"
        )
        run.send_signal(signal.SIGINT)
        run.wait(timeout=60)
    finally:
        run.kill()
    assert fingerprint(settings, "weather")[0] == NEW_ROWS
    with dg.DagsterInstance.from_config(str(home)) as instance:
        event = instance.get_latest_materialization_event(dg.AssetKey(["raw", "weather"]))
    assert event is not None, stderr.text()
    assert event.asset_materialization.metadata["dagster/row_count"].value == NEW_ROWS


def _load_from_a_pipe(settings, **env: str) -> subprocess.Popen:
    """A weather load reading standard input, the rows not yet written: the test decides when they come."""
    return subprocess.Popen(
        source_command("weather", "--input", "-"),
        env=program_env(settings, **env),
        stdin=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )


def _finish(load: subprocess.Popen, rest: bytes) -> tuple[int, str]:
    with contextlib.suppress(BrokenPipeError):
        load.stdin.write(rest)
    with contextlib.suppress(BrokenPipeError):
        load.stdin.close()
    stderr = load.stderr.read().decode()
    return load.wait(timeout=60), stderr


def test_a_session_terminated_mid_copy_fails_as_transient_on_one_line(loaded_weather):
    """The server ends the session while COPY runs (pg_terminate_backend, as a fast restart does): one
    line on stderr, exit 75, the previous rows kept; not libpq's three lines nor psycopg's log record."""
    settings, before = loaded_weather
    data = weather_csv(weather_rows(NEW_ROWS, origin="LGA"))
    load = _load_from_a_pipe(settings)
    try:
        load.stdin.write(data[: 2 * CHUNK_SIZE])
        load.stdin.flush()
        wait_until(lambda: sessions_waiting(settings, "a.query ilike 'copy%'"), 30, "COPY under way")
        with postgres.connect(settings, autocommit=True) as conn:
            conn.execute(
                "select pg_terminate_backend(pid) from pg_stat_activity where application_name = %s",
                (APPLICATION_NAME,),
            )
        code, stderr = _finish(load, data[2 * CHUNK_SIZE :])
    finally:
        load.kill()
    assert code == EXIT_TRANSIENT, stderr
    assert stderr.startswith("ingest error: source 'weather': standard input: warehouse error:"), stderr
    assert len(stderr.strip().splitlines()) == 1, stderr
    assert fingerprint(settings, "weather") == before


def test_the_servers_idle_in_transaction_timeout_is_transient(loaded_weather):
    """A slow input leaves the session idle in its transaction; the server's timeout ends it. The load
    fails as transient (a retry, or a faster input, passes), keeping the previous rows."""
    settings, before = loaded_weather
    load = _load_from_a_pipe(settings, PGOPTIONS="-c idle_in_transaction_session_timeout=300")
    try:
        time.sleep(1.5)  # connected, the rows deleted, waiting for the header
        code, stderr = _finish(load, weather_csv(weather_rows(3)))
    finally:
        load.kill()
    assert code == EXIT_TRANSIENT, stderr
    assert "standard input: warehouse error: terminating connection due to idle-in-transaction" in stderr
    assert len(stderr.strip().splitlines()) == 1, stderr
    assert fingerprint(settings, "weather") == before


def test_a_lock_timeout_under_a_millisecond_still_times_out(loaded_weather, new_weather):
    """0.0001 s rounds to 0 ms, which Postgres reads as "wait for ever": the load waits 1 ms at least."""
    settings, before = loaded_weather
    with postgres.connect(settings) as holder:
        holder.execute("select pg_advisory_xact_lock(hashtextextended('raw.weather', 0))")
        started = time.monotonic()
        result = run_source(settings, "weather", "--input", str(new_weather), "--lock-timeout", "0.0001")
        seconds = time.monotonic() - started
        holder.rollback()
    assert result.returncode == EXIT_TRANSIENT, result.stderr
    assert "the load lock 'raw.weather' was not granted within 0.0001 s" in result.stderr
    assert seconds < 30
    assert fingerprint(settings, "weather") == before


@pytest.mark.parametrize(
    "ddl", ["drop table raw.weather", "alter table raw.weather alter column temp type text"]
)
def test_ddl_while_a_load_waits_for_its_lock_waits_for_the_load(loaded_weather, tmp_path, ddl):
    """A DROP or ALTER from elsewhere while a load waits for its load lock: the load has checked the
    table against its declaration and holds it, so the DDL waits (here: times out) and the load commits
    into the table it checked; it neither fails as permanent (no such table) nor loads a drifted one."""
    settings, _ = loaded_weather
    path = tmp_path / "new.csv"
    path.write_bytes(weather_csv(weather_rows(3, origin="LGA")))
    with postgres.connect(settings) as holder:
        holder.execute("select pg_advisory_xact_lock(hashtextextended('raw.weather', 0))")
        load = start_source(settings, "weather", "--input", str(path))
        try:
            wait_until(
                lambda: sessions_waiting(settings, WAITING_FOR_A_LOAD_LOCK),
                30,
                "the load waiting for its lock",
            )
            with postgres.connect(settings, autocommit=True) as other, pytest.raises(errors.LockNotAvailable):
                other.execute("set lock_timeout = '1s'")
                other.execute(ddl)
            holder.rollback()
            code = load.wait(timeout=60)
        finally:
            load.kill()
    assert code == 0, load.stderr.read()
    with postgres.connect(settings) as conn:
        temp = conn.execute(
            "select format_type(atttypid, atttypmod) from pg_attribute "
            "where attrelid = 'raw.weather'::regclass and attname = 'temp'"
        ).fetchone()
    assert temp == ("double precision",)
    assert fingerprint(settings, "weather")[0] == 3
