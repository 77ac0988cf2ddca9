"""Assemble the location's definitions for a prepared dbt project."""

import dagster as dg
from dagster_dbt import DbtProject

from marts.assets import build_dbt_assets
from marts.dbt_cli import dbt_cli
from shared.resources import PostgresWarehouse

AUTOMATION_INTERVAL_SECONDS = 5


def build_definitions(project: DbtProject) -> dg.Definitions:
    return dg.Definitions(
        assets=build_dbt_assets(project),
        sensors=[
            dg.AutomationConditionSensorDefinition(
                "marts_automation",
                target=dg.AssetSelection.all(),
                default_status=dg.DefaultSensorStatus.RUNNING,
                # Each layer of models waits for a tick once its inputs land; Dagster's default of
                # 30 s made the waits most of the main job. 5 s is the asset daemon's own loop.
                minimum_interval_seconds=AUTOMATION_INTERVAL_SECONDS,
                description="Rebuilds dbt models when their raw inputs change (and daily as a backstop).",
            )
        ],
        resources={"dbt": dbt_cli(project), "warehouse": PostgresWarehouse()},
        # Every run here is one dbt op, one step: a step process of its own would only add a
        # second Python start-up (dagster, dagster_dbt, these definitions) to each run.
        executor=dg.in_process_executor,
    )
