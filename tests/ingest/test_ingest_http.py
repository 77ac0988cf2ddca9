"""HTTP inputs from a local server on 127.0.0.1: transient failures are retried, permanent ones fail
fast, a stalled server times out."""

from __future__ import annotations

import gzip
import threading
import time
from http import HTTPStatus

import pytest

from ingest_raw.errors import EXIT_PERMANENT, EXIT_TRANSIENT
from tests.ingest.ingest_helpers import (
    at,
    events_of,
    failure_message,
    fingerprint,
    http_server,
    materialize,
    run_source,
    serve_file,
    weather_csv,
    weather_rows,
)


def test_503_then_200_is_retried_and_succeeds(fresh_warehouse, tmp_path):
    path = tmp_path / "weather.csv"
    path.write_bytes(weather_csv(weather_rows(6)))

    def respond(handler, attempt):
        if attempt == 0:
            handler.send_error(503, "Service Unavailable")
        else:
            serve_file(handler, path)

    with http_server(respond) as (base, seen):
        result = materialize(at("weather", f"{base}/weather.csv"), fresh_warehouse)
    assert result.success
    assert len(seen) == 2
    assert len(events_of(result, "STEP_UP_FOR_RETRY")) == 1
    assert fingerprint(fresh_warehouse, "weather")[0] == 6


@pytest.mark.parametrize(("status", "attempts"), [(404, 1), (503, 3)], ids=["permanent", "transient"])
def test_an_http_error_fails_naming_the_url_after_the_attempts_it_deserves(loaded_weather, status, attempts):
    """A permanent answer fails at once; a transient one after the retries (two here), with the
    server's answer as the failure, not Dagster's "exceeded max_retries"."""
    settings, before = loaded_weather
    reason = HTTPStatus(status).phrase

    def respond(handler, _):
        handler.send_error(status, reason)

    with http_server(respond) as (base, seen):
        url = f"{base}/missing/weather.csv"
        result = materialize(at("weather", url), settings, max_retries=2)
    assert not result.success
    assert f"HTTP {status} {reason} for {url}" in failure_message(result)
    assert len(seen) == attempts
    assert len(events_of(result, "STEP_UP_FOR_RETRY")) == attempts - 1
    assert fingerprint(settings, "weather") == before


def test_a_stalled_server_times_out_as_a_transient_failure(loaded_weather):
    settings, before = loaded_weather
    released = threading.Event()

    def respond(handler, _):
        handler.send_response(200)
        handler.end_headers()
        handler.wfile.write(weather_csv(weather_rows(3))[:40])  # part of the header, then silence
        handler.wfile.flush()
        released.wait(timeout=30)

    with http_server(respond) as (base, _):
        result = run_source(settings, "weather", "--input", f"{base}/weather.csv", "--timeout", "1")
        released.set()
    assert result.returncode == EXIT_TRANSIENT, result.stderr
    assert f"timed out reading {base}/weather.csv" in result.stderr
    assert fingerprint(settings, "weather") == before


def test_a_connection_dropped_mid_body_is_transient(loaded_weather):
    settings, before = loaded_weather
    body = weather_csv(weather_rows(3))

    def respond(handler, _):
        handler.send_response(200)
        handler.send_header("Content-Length", str(len(body) * 2))
        handler.end_headers()
        handler.wfile.write(body)
        handler.wfile.flush()
        handler.close_connection = True

    with http_server(respond) as (base, _):
        result = run_source(settings, "weather", "--input", f"{base}/weather.csv", "--timeout", "5")
    assert result.returncode == EXIT_TRANSIENT, result.stderr
    assert f"connection lost while reading {base}/weather.csv" in result.stderr
    assert fingerprint(settings, "weather") == before


def test_gzip_over_http(fresh_warehouse):
    body = gzip.compress(weather_csv(weather_rows(5)))

    def respond(handler, _):
        handler.send_response(200)
        handler.send_header("Content-Length", str(len(body)))
        handler.end_headers()
        handler.wfile.write(body)

    with http_server(respond) as (base, _):
        result = run_source(fresh_warehouse, "weather", "--input", f"{base}/weather.csv.gz")
    assert result.returncode == 0, result.stderr
    assert fingerprint(fresh_warehouse, "weather")[0] == 5


def test_a_redirect_loop_is_permanent_on_one_line(loaded_weather):
    """urllib words a redirect loop over three lines; the error stays one line."""
    settings, before = loaded_weather

    def respond(handler, _):
        handler.send_response(302)
        handler.send_header("Location", "/loop")
        handler.send_header("Content-Length", "0")
        handler.end_headers()

    with http_server(respond) as (base, _):
        result = run_source(settings, "weather", "--input", f"{base}/loop")
    assert result.returncode == EXIT_PERMANENT, result.stderr
    assert result.stderr.startswith("ingest error: source 'weather': HTTP 302"), result.stderr
    assert "infinite loop" in result.stderr and f"{base}/loop" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert fingerprint(settings, "weather") == before


def test_response_headers_dripping_a_byte_a_second_stop_at_the_deadline(loaded_weather):
    """The total deadline holds from the request on: a status line or header trickling in (a byte
    every half second, never silent long enough for the per-read timeout) fails as transient once
    deadline_seconds have passed, not after the 64 KiB header line limit (days)."""
    settings, before = loaded_weather
    released = threading.Event()

    def respond(handler, _):
        handler.wfile.write(b"HTTP/1.1 200 OK\r\nX-Slow: ")
        while not released.wait(0.5):
            handler.wfile.write(b"a")

    with http_server(respond) as (base, _):
        started = time.monotonic()
        result = run_source(
            settings, "weather", "--input", f"{base}/weather.csv", "--timeout", "2", "--deadline", "3"
        )
        seconds = time.monotonic() - started
        released.set()
    assert result.returncode == EXIT_TRANSIENT, result.stderr
    assert f"{base}/weather.csv: download not finished within 3 s (the source's deadline_seconds)" in (
        result.stderr
    )
    assert seconds < 20
    assert fingerprint(settings, "weather") == before
