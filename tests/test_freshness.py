"""Freshness declared with the asset (a source declaration, a dbt model's meta) reaches Dagster's specs."""

from __future__ import annotations

from dataclasses import replace

import dagster as dg
import pytest

from ingest_raw.catalog import AIRLINES, SOURCES
from ingest_raw.declarations import DeclarationError, Source
from ingest_raw.definitions import defs as load_ingest
from ingest_raw.factory import asset_key
from shared.freshness import Freshness, FreshnessError
from tests.marts_harness import manifest, prepare_manifest


def _specs(defs: dg.Definitions) -> dict[dg.AssetKey, dg.AssetSpec]:
    return {spec.key: spec for spec in defs.resolve_all_asset_specs()}


def test_each_source_asset_carries_its_declared_policy():
    specs = _specs(load_ingest())
    declared = {name: source for name, source in SOURCES.items() if source.freshness}
    assert declared, "the shipped sources declare no freshness"
    for name, source in SOURCES.items():
        expected = source.freshness.policy(name) if source.freshness else None
        assert specs[asset_key(source)].freshness_policy == expected, name


def test_each_model_carries_the_policy_of_its_meta():
    prepare_manifest()
    from marts.definitions import defs as load_marts

    specs = {key.to_user_string(): spec for key, spec in _specs(load_marts()).items()}
    declared = 0
    for node in manifest()["nodes"].values():
        if node["resource_type"] != "model":
            continue
        meta = node["config"]["meta"].get("dagster", {}).get("freshness")
        declared += meta is not None
        expected = Freshness.from_dict(meta, node["name"]).policy(node["name"]) if meta else None
        assert specs[f"{node['config']['schema']}/{node['name']}"].freshness_policy == expected, node["name"]
    assert declared, "no shipped model declares freshness"


@pytest.mark.parametrize(
    "freshness, message",
    [
        (Freshness(), "either max_lag_hours or deadline_cron"),
        (Freshness(max_lag_hours=2, deadline_cron="0 7 * * *", lower_bound_hours=1), "either"),
        (Freshness(max_lag_hours=2, warn_lag_hours=3), "warn_lag_hours must be less"),
        (Freshness(max_lag_hours=0.001), "at least one minute"),
        (Freshness(deadline_cron="0 7 * * *"), "needs lower_bound_hours"),
    ],
)
def test_inconsistent_freshness_is_rejected_naming_the_source(freshness, message):
    with pytest.raises(DeclarationError, match=rf"source 'airlines'.*{message}"):
        replace(AIRLINES, freshness=freshness)


@pytest.mark.parametrize(
    "freshness, message",
    [
        (Freshness(deadline_cron="every day", lower_bound_hours=1), "Invalid cron"),
        (Freshness(deadline_cron="0 7 * * *", lower_bound_hours=30), "lower_bound_delta"),
        (Freshness(deadline_cron="0 7 * * *", lower_bound_hours=1, timezone="Mars/Base"), "timezone"),
    ],
)
def test_what_only_dagster_can_judge_fails_at_load_naming_the_source(freshness, message):
    with pytest.raises(FreshnessError, match=rf"source 'airlines'.*{message}"):
        replace(AIRLINES, freshness=freshness).freshness.policy("source 'airlines'")


def test_freshness_crosses_the_process_boundary_whole():
    for source in SOURCES.values():
        assert Source.from_dict(source.to_dict()) == source
    with pytest.raises(DeclarationError, match="unknown freshness field"):
        Source.from_dict(AIRLINES.to_dict() | {"freshness": {"max_lag": 3}})


def test_a_bad_model_meta_is_named():
    with pytest.raises(FreshnessError, match="dbt model x: unknown freshness field"):
        Freshness.from_dict({"fail_window": "1h"}, "dbt model x")
