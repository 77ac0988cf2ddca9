"""The TypeScript source program (src/ingest_raw/typescript): standalone with `npm run`, over HTTP, with
bad input, interrupted, and through Dagster with the declaration handed over whole."""

from __future__ import annotations

import hashlib
import json
import math
import signal
import subprocess
from dataclasses import replace
from pathlib import Path

import dagster as dg
import pytest

from devtools import typescript
from ingest_raw.catalog import SOURCES, WEATHER
from ingest_raw.errors import EXIT_INTERRUPTED, EXIT_PERMANENT, EXIT_TRANSIENT
from ingest_raw.factory import source_asset
from ingest_raw.launcher import source_command
from ingest_raw.loader import PAUSE_ENV
from tests.ingest.ingest_helpers import (
    PROGRAM_TIMEOUT,
    LineWatcher,
    check_results,
    data_version,
    events_of,
    failure_message,
    fingerprint,
    http_server,
    loader_sessions,
    materialize,
    program_env,
    serve_file,
    terminate_run_while_copying,
    wait_until,
    weather_csv,
    weather_rows,
)

pytestmark = pytest.mark.skipif(typescript.node() is None, reason="node is not installed")

TYPESCRIPT = [source for source in SOURCES.values() if source.program is not None]
SOURCE = SOURCES["regional_cpi"]


@pytest.fixture(scope="module")
def project() -> Path:
    return typescript.build()


@pytest.fixture(scope="module")
def dataset(project) -> dict:
    return json.loads((project / SOURCE.input).read_text())


def cells(dataset: dict) -> int:
    return math.prod(dataset["size"])


def run_program(project: Path, settings, *args: str, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        source_command(SOURCE) + list(args),
        cwd=project,
        env=program_env(settings, **env),
        capture_output=True,
        text=True,
        timeout=PROGRAM_TIMEOUT,
    )


def write_dataset(path: Path, dataset: dict, **changes) -> Path:
    path.write_text(json.dumps(dataset | changes))
    return path


def test_the_typescript_catalog_matches_the_declarations(project):
    probe = "import('./dist/catalog.js').then((m) => console.log(JSON.stringify(m.SOURCES)))"
    done = subprocess.run(["node", "-e", probe], cwd=project, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == {source.name: source.to_dict() for source in TYPESCRIPT}


def test_npm_run_loads_the_table_standalone(project, dataset, fresh_warehouse):
    def npm_run() -> subprocess.CompletedProcess:
        return subprocess.run(
            ["npm", "run", "--silent", f"ingest:{SOURCE.name}"],
            cwd=project,
            env=program_env(fresh_warehouse),
            capture_output=True,
            text=True,
            timeout=PROGRAM_TIMEOUT,
        )

    first = npm_run()
    assert first.returncode == 0, first.stderr
    assert f"loaded raw.regional_cpi: {cells(dataset)} rows (previously 0)" in first.stderr
    loaded = fingerprint(fresh_warehouse, "regional_cpi")
    assert loaded[0] == cells(dataset)
    again = npm_run()
    assert again.returncode == 0, again.stderr
    assert fingerprint(fresh_warehouse, "regional_cpi") == loaded


def test_loads_over_http_and_classifies_http_failures(project, dataset, fresh_warehouse, tmp_path):
    fixture = project / SOURCE.input
    truncated = fixture.read_bytes()[:1000]

    def respond(handler, _):
        if handler.path == "/cpi.json":
            serve_file(handler, fixture)
        elif handler.path == "/cut.json":
            handler.send_response(200)
            handler.send_header("Content-Length", str(fixture.stat().st_size))
            handler.end_headers()
            handler.wfile.write(truncated)
        else:
            handler.send_response(503 if handler.path == "/busy.json" else 404)
            handler.send_header("Content-Length", "0")
            handler.end_headers()

    with http_server(respond) as (base, _):
        loaded = run_program(project, fresh_warehouse, "--input", f"{base}/cpi.json")
        assert loaded.returncode == 0, loaded.stderr
        before = fingerprint(fresh_warehouse, "regional_cpi")
        assert before[0] == cells(dataset)
        for path, code, message in [
            ("missing.json", EXIT_PERMANENT, "HTTP 404"),
            ("busy.json", EXIT_TRANSIENT, "HTTP 503"),
            ("cut.json", EXIT_TRANSIENT, "connection lost"),
        ]:
            result = run_program(project, fresh_warehouse, "--input", f"{base}/{path}", "--timeout", "5")
            assert (result.returncode, message in result.stderr) == (code, True), result.stderr
            assert "source 'regional_cpi'" in result.stderr or f"{base}/{path}" in result.stderr
    assert fingerprint(fresh_warehouse, "regional_cpi") == before


def test_bad_data_fails_naming_the_cell_and_keeps_the_table(project, dataset, fresh_warehouse, tmp_path):
    assert run_program(project, fresh_warehouse).returncode == 0
    before = fingerprint(fresh_warehouse, "regional_cpi")
    values = list(dataset["value"])
    values[5] = "n/a"
    cases = [
        (write_dataset(tmp_path / "text.json", dataset, value=values), '"value" [5] is "n/a"'),
        (
            write_dataset(tmp_path / "short.json", dataset, value=values[:-1]),
            "the dimension sizes multiply to",
        ),
        (
            write_dataset(tmp_path / "dims.json", dataset, id=["region", "period", "contents"]),
            'no "category"',
        ),
    ]
    broken = tmp_path / "broken.json"
    broken.write_text('{\n "version": "2.0",\n "class": "dataset"\n "id": []\n}\n')
    cases.append((broken, "broken.json line 4, column 2: invalid JSON"))
    for path, message in cases:
        result = run_program(project, fresh_warehouse, "--input", str(path))
        assert result.returncode == EXIT_PERMANENT, result.stderr
        assert f"ingest error: source 'regional_cpi': {path}" in result.stderr
        assert message in result.stderr
    assert fingerprint(fresh_warehouse, "regional_cpi") == before


def test_a_value_of_the_wrong_type_names_the_cell_and_column(project, dataset, fresh_warehouse, tmp_path):
    """Postgres checks each value against the declared type; its line number becomes the dataset's cell."""
    integer = replace(SOURCE, name="cpi_integer", table="cpi_integer")
    integer = replace(
        integer, columns=tuple(replace(c, type="integer") if c.name == "value" else c for c in SOURCE.columns)
    )
    result = materialize(integer, fresh_warehouse)
    assert not result.success
    message = failure_message(result)
    assert (
        "source 'cpi_integer': data/regional_cpi.json value[0] (region=R01, month=2016M01, contents=cpi)"
        in message
    )
    assert 'column value: invalid input syntax for type integer: "101.9"; expected integer' in message
    assert len(events_of(result, "STEP_START")) == 1  # permanent: no retry
    assert fingerprint(fresh_warehouse, "cpi_integer") == (0, None)


def test_materializes_through_dagster_with_metadata_and_checks(project, dataset, fresh_warehouse):
    result = materialize(SOURCE, fresh_warehouse)
    assert result.success, failure_message(result)
    (materialization,) = result.asset_materializations_for_node("raw__regional_cpi")
    metadata = materialization.metadata
    assert metadata["dagster/row_count"].value == cells(dataset)
    assert [column.name for column in metadata["dagster/column_schema"].schema.columns] == list(
        SOURCE.column_names
    )
    assert metadata["dagster/table_name"].value == "raw.regional_cpi"
    assert metadata["dataset"].value["label"] == dataset["label"]
    assert isinstance(metadata["load_seconds"].value, float)
    digest = hashlib.sha256((project / SOURCE.input).read_bytes()).hexdigest()
    assert data_version(result, "raw__regional_cpi") == digest
    assert {name: check.passed for name, check in check_results(result).items()} == {
        "not_empty": True,
        "row_count_change": True,
        "primary_key_unique": True,
    }
    assert set(next(iter(source_asset(SOURCE).specs)).kinds) == {"typescript", "postgres"}

    again = materialize(SOURCE, fresh_warehouse)  # now with previous rows: a relative change of 0.0
    assert again.success, failure_message(again)
    change = check_results(again)["row_count_change"]
    assert (change.passed, change.metadata["relative_change"]) == (True, dg.FloatMetadataValue(0.0))


def test_a_declaration_not_in_the_catalog_loads_end_to_end(project, dataset, fresh_warehouse, tmp_path):
    """The launcher hands the declaration over whole: another table, fewer columns, another input."""
    fixture = project / SOURCE.input
    keep = {"region", "month", "contents", "value"}
    cpi = replace(
        SOURCE,
        name="cpi_codes",
        table="cpi_codes",
        columns=tuple(c for c in SOURCE.columns if c.name in keep),
    )
    with http_server(lambda handler, _: serve_file(handler, fixture)) as (base, _):
        cpi = replace(cpi, input=f"{base}/cpi.json")
        assert cpi.name not in SOURCES
        result = materialize(cpi, fresh_warehouse)
    assert result.success, failure_message(result)
    assert fingerprint(fresh_warehouse, "cpi_codes")[0] == cells(dataset)

    weather_file = tmp_path / "jfk.csv"
    weather_file.write_bytes(weather_csv(weather_rows(5, origin="JFK")))
    jfk = replace(WEATHER, name="weather_jfk", table="weather_jfk", input=str(weather_file))
    python = materialize(jfk, fresh_warehouse)
    assert python.success, failure_message(python)
    assert fingerprint(fresh_warehouse, "weather_jfk")[0] == 5


def test_sigint_rolls_back_and_exits_130(project, fresh_warehouse):
    assert run_program(project, fresh_warehouse).returncode == 0
    before = fingerprint(fresh_warehouse, "regional_cpi")
    for stage in ("locked", "copy", "commit"):
        process = subprocess.Popen(
            source_command(SOURCE),
            cwd=project,
            env=program_env(fresh_warehouse, **{PAUSE_ENV: stage}),
            stderr=subprocess.PIPE,
            text=True,
        )
        stderr = LineWatcher(process.stderr)
        try:
            stderr.wait_for(f"paused at {stage}")
            process.send_signal(signal.SIGINT)
            assert process.wait(timeout=10) == EXIT_INTERRUPTED
        finally:
            process.kill()
        assert "regional_cpi interrupted, rolled back" in stderr.text()
        wait_until(lambda: loader_sessions(fresh_warehouse) == 0, 10, "the interrupted session's end")
        assert fingerprint(fresh_warehouse, "regional_cpi") == before


def test_terminating_the_dagster_run_stops_the_program(project, fresh_warehouse, tmp_path):
    assert run_program(project, fresh_warehouse).returncode == 0
    before = fingerprint(fresh_warehouse, "regional_cpi")
    home = tmp_path / "dagster_home"
    home.mkdir()
    status = terminate_run_while_copying(fresh_warehouse, home, SOURCE.name, SOURCE.input)
    assert fingerprint(fresh_warehouse, "regional_cpi") == before
    assert status in (dg.DagsterRunStatus.CANCELED, dg.DagsterRunStatus.FAILURE)


def test_options_the_program_does_not_implement_are_refused(project, fresh_warehouse):
    tolerant = replace(SOURCE, name="cpi_tolerant", table="cpi_tolerant", max_rejected_rows=5)
    result = materialize(tolerant, fresh_warehouse)
    assert not result.success
    message = failure_message(result)
    assert "source 'cpi_tolerant': partitions and max_rejected_rows are not supported" in message
    assert len(events_of(result, "STEP_START")) == 1  # permanent: no retry
