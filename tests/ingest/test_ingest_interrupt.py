"""Kill -9, SIGINT and Dagster run termination in the middle of a load: raw.weather keeps its previous
rows every time, and no session or lock is left behind."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import dagster as dg
import pytest

from ingest_raw.errors import EXIT_INTERRUPTED
from ingest_raw.loader import PAUSE_ENV, STAGES
from ingest_raw.reader import CHUNK_SIZE
from shared import postgres
from tests.ingest.ingest_helpers import (
    LineWatcher,
    fingerprint,
    loader_sessions,
    paused_pid,
    process_gone,
    program_env,
    run_source,
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
    with postgres.connect(settings) as conn:
        return bool(
            conn.execute(
                "select count(*) from pg_locks l join pg_stat_activity a using (pid) "
                "where l.locktype = 'advisory' and not l.granted and a.application_name = 'ingest-raw'"
            ).fetchone()[0]
        )


RUN_SCRIPT = Path(__file__).with_name("run_to_terminate.py")


def test_terminating_the_dagster_run_stops_the_source_program(loaded_weather, new_weather, tmp_path):
    settings, before = loaded_weather
    home = tmp_path / "dagster_home"
    home.mkdir()
    env = program_env(
        settings, DAGSTER_HOME=str(home), WEATHER_LOCATION=str(new_weather), **{PAUSE_ENV: "copy"}
    )
    run = subprocess.Popen([sys.executable, str(RUN_SCRIPT)], env=env, stderr=subprocess.PIPE, text=True)
    child = None
    try:
        child = paused_pid(LineWatcher(run.stderr).wait_for("paused at copy"))
        run.send_signal(signal.SIGINT)  # how a run worker learns that its run was terminated
        wait_until(lambda: process_gone(child), 5, f"source program pid {child} exit")
        run.wait(timeout=30)
    finally:
        run.kill()
        if child and not process_gone(child):
            os.kill(child, signal.SIGKILL)
    wait_until(lambda: loader_sessions(settings) == 0, 5, "the source program's session end")
    assert fingerprint(settings, "weather") == before
    with dg.DagsterInstance.from_config(str(home)) as instance:
        (record,) = instance.get_run_records()
    assert record.dagster_run.status in (dg.DagsterRunStatus.CANCELED, dg.DagsterRunStatus.FAILURE)
