"""The dbt project's artifacts: keyed on the parse inputs, parsed once, kept outside the package, and
the monthly window passed so that dbt keeps partial parsing."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from marts.project import (
    ARTIFACTS_ENV,
    MANIFEST,
    PROJECT_DIR,
    flights_project,
    invocation_target,
    parse_key,
    parse_state,
)

PROCESS_TIMEOUT_SECONDS = 300
#: dbt's own log events: I040 "Partial parsing enabled: n files added, m changed", I024 "Unable to do
#: partial parsing because ...".
PARTIAL_PARSING, FULL_REPARSE = "I040", "I024"


@pytest.fixture
def project_copy(tmp_path, monkeypatch) -> Path:
    monkeypatch.setenv(ARTIFACTS_ENV, str(tmp_path / "artifacts"))
    copy = tmp_path / "dbt_project"
    # What dbt writes (a checkout from before artifacts moved out may still hold it) is no input.
    shutil.copytree(PROJECT_DIR, copy, ignore=shutil.ignore_patterns("target", "logs", "dbt_packages"))
    return copy


def _load_in_subprocess(project_dir: Path, **env: str) -> subprocess.CompletedProcess:
    probe = (
        "from pathlib import Path; from marts.project import flights_project;"
        f" print(flights_project(Path({str(project_dir)!r})).manifest_path)"
    )
    return subprocess.run(
        [sys.executable, "-c", probe],
        env=os.environ | env,
        capture_output=True,
        text=True,
        timeout=PROCESS_TIMEOUT_SECONDS,
    )


def test_the_key_follows_what_dbt_parse_reads(project_copy, monkeypatch):
    key = parse_key(project_copy)
    assert parse_key(project_copy) == key
    monkeypatch.setenv("WAREHOUSE_HOST", "elsewhere.example")
    assert parse_key(project_copy) == key
    (project_copy / "models" / "marts" / "dim_carriers.sql").write_text("select 1 as carrier_code\n")
    assert parse_key(project_copy) != key


def test_parsed_once_outside_the_project_and_again_only_after_an_edit(project_copy, tmp_path):
    before = sorted(path.name for path in project_copy.iterdir())
    first = flights_project(project_copy)
    artifacts = tmp_path / "artifacts"
    assert first.manifest_path.is_file() and first.manifest_path.is_relative_to(artifacts)
    assert sorted(path.name for path in project_copy.iterdir()) == before
    parsed_at = first.manifest_path.stat().st_mtime_ns

    again = _load_in_subprocess(project_copy, DAGSTER_IS_DEV_CLI="1")  # as a run process under dagster dev
    assert again.returncode == 0, again.stderr
    assert Path(again.stdout.strip()) == first.manifest_path
    assert first.manifest_path.stat().st_mtime_ns == parsed_at

    (project_copy / "models" / "marts" / "extra_mart.sql").write_text("select 1 as answer\n")
    edited = flights_project(project_copy)
    assert edited.manifest_path != first.manifest_path
    nodes = json.loads(edited.manifest_path.read_text())["nodes"]
    assert "model.flights.extra_mart" in nodes
    assert not first.target_path.exists(), "the parse of the previous version is removed"
    assert not (project_copy / "target").exists() and not (project_copy / "logs").exists()


def test_concurrent_loads_parse_into_one_folder(project_copy, tmp_path):
    env = os.environ | {ARTIFACTS_ENV: str(tmp_path / "artifacts")}
    probe = (
        "from pathlib import Path; from marts.project import flights_project;"
        f" flights_project(Path({str(project_copy)!r}))"
    )
    processes = [
        subprocess.Popen([sys.executable, "-c", probe], env=env, stderr=subprocess.PIPE, text=True)
        for _ in range(2)
    ]
    for process in processes:
        _, stderr = process.communicate(timeout=PROCESS_TIMEOUT_SECONDS)
        assert process.returncode == 0, stderr
    folders = [path for path in (tmp_path / "artifacts").iterdir() if path.is_dir()]
    assert [folder.name for folder in folders] == [parse_key(project_copy)]
    assert (folders[0] / MANIFEST).is_file()


def _dbt_log_codes(project, name: str, args: list[str], env: dict[str, str]) -> set[str]:
    from marts.dbt_cli import dbt_cli

    with invocation_target(project, name) as target:
        assert target.is_relative_to(project.target_path.parent)
        dbt_cli(project).cli_with_env(
            ["ls", "--select", "fct_flights", *args], env, target_path=target
        ).wait()
        events = [json.loads(line) for line in (target / "dbt.log").read_text().splitlines()]
    assert not target.exists()
    return {event["info"]["code"] for event in events}


def test_the_monthly_window_keeps_partial_parsing_and_vars_would_not(project_copy):
    """What the monthly op does (window in the environment), against what it did (window as --vars),
    read from dbt's own log of each invocation."""
    from marts.assets import WINDOW_ENV

    project = flights_project(project_copy)
    window = dict(zip(WINDOW_ENV, ("2013-03-01", "2013-04-01"), strict=True))
    codes = _dbt_log_codes(project, "window", [], window)
    assert PARTIAL_PARSING in codes and FULL_REPARSE not in codes
    assert FULL_REPARSE in _dbt_log_codes(
        project, "vars", ["--vars", json.dumps({"min_date": "2013-03-01"})], {}
    )


def test_a_new_connection_parses_once_then_keeps_its_state(project_copy, monkeypatch):
    """An image is parsed without a warehouse: its first run re-parses in full, the next ones do not."""
    project = flights_project(project_copy)
    monkeypatch.setenv("WAREHOUSE_HOST", "warehouse.example")
    assert not parse_state(project).is_file()
    assert FULL_REPARSE in _dbt_log_codes(project, "first", [], {})
    assert parse_state(project).is_file()
    codes = _dbt_log_codes(project, "second", [], {})
    assert PARTIAL_PARSING in codes and FULL_REPARSE not in codes
