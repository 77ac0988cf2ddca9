"""How dbt resources become Dagster assets in this location."""

from collections.abc import Mapping
from typing import Any

import dagster as dg
from dagster_dbt import DagsterDbtTranslator, DbtProject

from marts.automation import follow_inputs, when_missing
from shared.freshness import Freshness

#: The dbt tag of models partitioned by month like raw.flights (shared.partitions.FLIGHTS_MONTHLY).
MONTHLY_TAG = "monthly"


def is_monthly(dbt_resource_props: Mapping[str, Any]) -> bool:
    return MONTHLY_TAG in dbt_resource_props.get("tags", [])


class FlightsTranslator(DagsterDbtTranslator):
    """Models are keyed by their schema: `["staging", name]`, `["marts", name]`. Sources take the key
    in their `meta.dagster.asset_key`, the key the ingest_raw location defines.

    The key rule lives in `get_asset_key`, which dagster-dbt also uses for the events of source
    tests; were it only applied in `get_asset_spec`, those events would land on phantom keys."""

    @staticmethod
    def _dagster_meta(dbt_resource_props: Mapping[str, Any]) -> Mapping[str, Any]:
        meta = dbt_resource_props.get("config", {}).get("meta") or dbt_resource_props.get("meta", {})
        return meta.get("dagster", {})

    def get_asset_key(self, dbt_resource_props: Mapping[str, Any]) -> dg.AssetKey:
        configured = self._dagster_meta(dbt_resource_props).get("asset_key")
        if configured:
            return dg.AssetKey(configured)
        if dbt_resource_props["resource_type"] == "source":
            raise ValueError(
                f"dbt source {dbt_resource_props['unique_id']} has no meta.dagster.asset_key: every source"
                " must name the ingest_raw asset it reads, e.g. ['raw', '<table>']"
            )
        return dg.AssetKey([dbt_resource_props["schema"], dbt_resource_props["name"]])

    def get_metadata(self, dbt_resource_props: Mapping[str, Any]) -> Mapping[str, Any]:
        """The table name without its database: the manifest is parsed ahead (in images against a
        placeholder database), and the warehouse database is the deployment's choice."""
        metadata = dict(super().get_metadata(dbt_resource_props))
        relation = dbt_resource_props.get("identifier") or dbt_resource_props.get("alias")
        if relation:
            metadata["dagster/table_name"] = f"{dbt_resource_props['schema']}.{relation}"
        return metadata

    def get_automation_condition(self, dbt_resource_props: Mapping[str, Any]) -> dg.AutomationCondition:
        return follow_inputs(daily_backstop=not is_monthly(dbt_resource_props))

    def get_asset_spec(
        self, manifest: Mapping[str, Any], unique_id: str, project: DbtProject | None
    ) -> dg.AssetSpec:
        """A monthly model also needs whole-table models (its tests read the dimensions), but those
        updating must not rebuild all twelve months: only its monthly inputs trigger it."""
        spec = super().get_asset_spec(manifest, unique_id, project)
        props = self.get_resource_props(manifest, unique_id)
        if props["resource_type"] != "model":
            return spec
        declared = self._dagster_meta(props).get("freshness")
        if declared is not None:
            where = f"dbt model {unique_id} (meta.dagster.freshness)"
            policy = Freshness.from_dict(declared, where).policy(where)
            spec = spec.replace_attributes(freshness_policy=policy)
        if not is_monthly(props):
            if (
                _read_by_monthly_models_only(manifest, unique_id)
                and props["config"]["materialized"] == "view"
            ):
                return spec.replace_attributes(automation_condition=when_missing())
            return spec
        whole_table_parents = [
            self.get_asset_key(self.get_resource_props(manifest, parent))
            for parent in props["depends_on"]["nodes"]
            if parent.startswith("model.") and not is_monthly(self.get_resource_props(manifest, parent))
        ]
        if not whole_table_parents:
            return spec
        return spec.replace_attributes(
            automation_condition=follow_inputs(daily_backstop=False, not_triggered_by=whole_table_parents)
        )


def _read_by_monthly_models_only(manifest: Mapping[str, Any], unique_id: str) -> bool:
    readers = [child for child in manifest["child_map"].get(unique_id, []) if child.startswith("model.")]
    return bool(readers) and all(is_monthly(manifest["nodes"][reader]) for reader in readers)
