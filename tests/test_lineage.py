"""The cross-location contract: ingest_raw and marts merged as the workspace sees them.

Locations never import each other; this test may, to check that the dbt sources point at keys
ingest_raw defines, that no key is defined twice, and that automation follows raw across the line."""

from __future__ import annotations

from collections.abc import Iterable

import dagster as dg
import pytest

from tests.marts_harness import prepare_manifest

MONTHS = [f"2013-{month:02d}-01" for month in range(1, 13)]
WHOLE_RAW_TABLES = ("airlines", "airports", "planes", "weather")
#: The shipped models whose automation these tests follow; models added beside them are not counted.
FOLLOWED = {
    dg.AssetKey.from_user_string(key)
    for key in (
        *(f"staging/stg_{table}" for table in (*WHOLE_RAW_TABLES, "flights")),
        "marts/dim_carriers",
        "marts/dim_airports",
        "marts/fct_flights",
        "marts/carrier_monthly_performance",
        "marts/route_performance",
        "marts/departure_delay_by_weather",
    )
}


@pytest.fixture(scope="module")
def locations() -> tuple[dg.Definitions, dg.Definitions]:
    prepare_manifest()
    from ingest_raw.definitions import defs as load_ingest
    from marts.definitions import defs as load_marts

    return load_ingest(), load_marts()


def _defined(defs: dg.Definitions) -> set[dg.AssetKey]:
    return {key for assets in defs.assets if isinstance(assets, dg.AssetsDefinition) for key in assets.keys}


@pytest.fixture(scope="module")
def workspace(locations) -> dg.Definitions:
    """Both locations in one graph (each brings its own warehouse resource; one is enough here)."""
    ingest, marts = locations
    marts_without_shared = dg.Definitions(
        assets=marts.assets, sensors=marts.sensors, resources={"dbt": marts.resources["dbt"]}
    )
    return dg.Definitions.merge(ingest, marts_without_shared)


def test_no_key_is_defined_by_both_locations(locations):
    ingest, marts = locations
    assert _defined(ingest) & _defined(marts) == set()


def test_every_upstream_of_marts_is_defined_by_ingest_raw(locations):
    ingest, marts = locations
    upstream = {
        dep.asset_key for assets in marts.assets for spec in assets.specs for dep in spec.deps
    } - _defined(marts)
    assert upstream, "marts reads nothing from raw?"
    undefined = upstream - _defined(ingest)
    assert not undefined, (
        f"dbt sources point at keys ingest_raw does not define: {sorted(map(str, undefined))}"
    )


def test_edges_run_raw_to_staging_to_marts(workspace):
    graph = workspace.resolve_asset_graph()

    def parents(key: str) -> set[str]:
        return {
            parent.to_user_string() for parent in graph.get(dg.AssetKey.from_user_string(key)).parent_keys
        }

    assert "raw/flights" in parents("staging/stg_flights")
    assert "staging/stg_flights" in parents("marts/fct_flights")
    assert "marts/fct_flights" in parents("marts/carrier_monthly_performance")
    assert graph.get(dg.AssetKey(["raw", "flights"])).is_materializable
    flights_partitions = graph.get(dg.AssetKey(["raw", "flights"])).partitions_def
    assert graph.get(dg.AssetKey(["marts", "fct_flights"])).partitions_def == flights_partitions
    assert "raw/flights" in parents("marts/fct_flights"), "a month of fct_flights follows its raw month"


def _report(instance: dg.DagsterInstance, requested: dict[dg.AssetKey, set[str | None]]) -> None:
    """What a run of the requested assets would leave behind: one materialization per partition."""
    for key, partitions in requested.items():
        for partition in partitions:
            instance.report_runless_asset_event(dg.AssetMaterialization(key, partition=partition))


def _requested(result, keys: Iterable[dg.AssetKey]) -> dict[dg.AssetKey, set[str | None]]:
    return {key: set(result.get_requested_partitions(key)) for key in keys if result.get_num_requested(key)}


def _names(requested: dict[dg.AssetKey, set[str | None]]) -> dict[str, int]:
    return {key.path[-1]: len(partitions) for key, partitions in requested.items()}


class Daemon:
    """Automation ticks on a test instance; a request is taken as run at once (its materializations
    reported), and the next tick sees them, as the daemon does after the run ends."""

    def __init__(self, workspace: dg.Definitions, instance: dg.DagsterInstance, watched: set[dg.AssetKey]):
        self.workspace, self.instance, self.watched, self.cursor = workspace, instance, watched, None

    def tick(self) -> dict[str, int]:
        result = dg.evaluate_automation_conditions(
            defs=self.workspace, instance=self.instance, cursor=self.cursor
        )
        self.cursor = result.cursor
        requested = _requested(result, self.watched)
        _report(self.instance, requested)
        return _names(requested)

    def settle(self) -> None:
        assert self.tick() == {}, "built once, not again while nothing changes"


def test_automation_follows_raw_once_and_month_by_month(workspace, locations):
    with dg.instance_for_test() as instance:
        daemon = Daemon(workspace, instance, FOLLOWED & _defined(locations[1]))
        assert daemon.tick() == {}, "nothing to build before raw is loaded"

        _report(instance, {dg.AssetKey(["raw", table]): {None} for table in WHOLE_RAW_TABLES})
        _report(instance, {dg.AssetKey(["raw", "flights"]): set(MONTHS)})
        assert daemon.tick() == {
            "stg_airlines": 1,
            "stg_airports": 1,
            "stg_planes": 1,
            "stg_weather": 1,
            "stg_flights": 1,
            "dim_carriers": 1,
            "dim_airports": 1,
        }
        assert daemon.tick() == {"fct_flights": 12}, "fct_flights waits for the dimensions its tests read"
        whole_year_marts = {
            "carrier_monthly_performance": 1,
            "route_performance": 1,
            "departure_delay_by_weather": 1,
        }
        assert daemon.tick() == whole_year_marts
        daemon.settle()

        _report(instance, {dg.AssetKey(["raw", "flights"]): {"2013-03-01"}})
        assert daemon.tick() == {"fct_flights": 1}, "one month rebuilds one month (stg_flights is a view)"
        assert daemon.tick() == whole_year_marts
        daemon.settle()

        _report(instance, {dg.AssetKey(["raw", "airlines"]): {None}})
        assert daemon.tick() == {"stg_airlines": 1, "dim_carriers": 1, "carrier_monthly_performance": 1}, (
            "a dimension update rebuilds what reads it, not the twelve months of fct_flights"
        )
        daemon.settle()


def test_raw_loaded_before_automation_started_is_built_on_the_next_tick(workspace, locations):
    with dg.instance_for_test() as instance:
        _report(instance, {dg.AssetKey(["raw", table]): {None} for table in WHOLE_RAW_TABLES})
        _report(instance, {dg.AssetKey(["raw", "flights"]): set(MONTHS)})
        daemon = Daemon(workspace, instance, FOLLOWED & _defined(locations[1]))
        assert daemon.tick() == {}, "the first evaluation only takes stock"
        assert "dim_carriers" in daemon.tick()
        assert daemon.tick() == {"fct_flights": 12}
        assert set(daemon.tick()) == {
            "carrier_monthly_performance",
            "route_performance",
            "departure_delay_by_weather",
        }
        daemon.settle()
