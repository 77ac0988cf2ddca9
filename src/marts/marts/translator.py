"""How dbt resources become Dagster assets in this location."""

from collections.abc import Mapping
from typing import Any

import dagster as dg
from dagster_dbt import DagsterDbtTranslator

from marts.automation import follow_inputs

#: The dbt tag of models partitioned by month like raw.flights (shared.partitions.FLIGHTS_MONTHLY).
MONTHLY_TAG = "monthly"


def is_monthly(dbt_resource_props: Mapping[str, Any]) -> bool:
    return MONTHLY_TAG in dbt_resource_props.get("tags", [])


class FlightsTranslator(DagsterDbtTranslator):
    """Models are keyed by their schema: `["staging", name]`, `["marts", name]`. Sources take the key
    in their `meta.dagster.asset_key`, the key the ingest_raw location defines.

    The key rule lives in `get_asset_key`, which dagster-dbt also uses for the events of source
    tests: were it only applied in `get_asset_spec`, those events would land on phantom keys such as
    `["raw_source", "airlines"]`."""

    def get_asset_key(self, dbt_resource_props: Mapping[str, Any]) -> dg.AssetKey:
        meta = dbt_resource_props.get("config", {}).get("meta") or dbt_resource_props.get("meta", {})
        configured = meta.get("dagster", {}).get("asset_key")
        if configured:
            return dg.AssetKey(configured)
        if dbt_resource_props["resource_type"] == "source":
            raise ValueError(
                f"dbt source {dbt_resource_props['unique_id']} has no meta.dagster.asset_key: every source"
                " must name the ingest_raw asset it reads, e.g. ['raw', '<table>']"
            )
        return dg.AssetKey([dbt_resource_props["schema"], dbt_resource_props["name"]])

    def get_automation_condition(self, dbt_resource_props: Mapping[str, Any]) -> dg.AutomationCondition:
        return follow_inputs(daily_backstop=not is_monthly(dbt_resource_props))
