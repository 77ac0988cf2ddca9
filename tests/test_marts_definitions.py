"""The marts location as Dagster loads it: keys, groups, kinds, checks, partitions, automation."""

from __future__ import annotations

import json
import subprocess
import sys

import dagster as dg
import pytest

from shared.partitions import FLIGHTS_MONTHLY
from tests.marts_harness import model_keys, prepare_manifest, source_keys

IMPORT_TIMEOUT_SECONDS = 120


@pytest.fixture(scope="module")
def defs() -> dg.Definitions:
    prepare_manifest()
    from marts.definitions import defs as load_definitions

    return load_definitions()


@pytest.fixture(scope="module")
def specs(defs) -> dict[str, dg.AssetSpec]:
    return {spec.key.to_user_string(): spec for assets in defs.assets for spec in assets.specs}


def test_importing_the_module_parses_nothing():
    probe = (
        "import json, sys; import marts.definitions as module;"
        "heavy = ('marts.project', 'dagster_dbt', 'dbt');"
        "print(json.dumps({'loaded': [name for name in heavy if name in sys.modules],"
        " 'lazy': type(module.defs).__name__}))"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=IMPORT_TIMEOUT_SECONDS
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == {"loaded": [], "lazy": "LazyDefinitions"}


def test_keys_follow_schema_and_sources_point_at_raw(specs):
    assert set(specs) == model_keys()
    deps = {key: {dep.asset_key.to_user_string() for dep in spec.deps} for key, spec in specs.items()}
    assert deps["staging/stg_airlines"] == {"raw/airlines"}
    assert deps["staging/stg_flights"] == {"raw/flights"}
    assert deps["marts/dim_carriers"] == {"staging/stg_airlines"}
    assert deps["marts/departure_delay_by_weather"] == {"marts/fct_flights", "staging/stg_weather"}
    referenced_raw = {dep for spec_deps in deps.values() for dep in spec_deps if dep.startswith("raw/")}
    assert referenced_raw == source_keys()


def test_groups_kinds_owners_descriptions_and_columns(specs):
    for key, spec in specs.items():
        assert spec.group_name == key.split("/")[0], key
        assert spec.kinds == {"dbt", "postgres"}, key
        assert spec.owners == ["team:analytics"], key
        assert spec.metadata["dagster/table_name"] == key.replace("/", "."), key
    assert specs["marts/dim_carriers"].description.startswith("Carriers by code")
    columns = {
        column.name: column for column in specs["marts/fct_flights"].metadata["dagster/column_schema"].columns
    }
    assert (
        columns["is_on_time"].description == "Arrived at most 15 minutes late; NULL when it did not arrive."
    )


def test_only_the_monthly_models_are_partitioned_like_raw_flights(specs):
    partitioned = {key for key, spec in specs.items() if spec.partitions_def is not None}
    assert partitioned == {"marts/fct_flights"}
    assert all(specs[key].partitions_def == FLIGHTS_MONTHLY for key in partitioned)
    # stg_flights is one view over every month; the month fct_flights rebuilds follows raw/flights.
    deps = {dep.asset_key.to_user_string() for dep in specs["marts/fct_flights"].deps}
    assert {"raw/flights", "staging/stg_flights"} <= deps


def test_key_tests_are_blocking_checks_and_the_rest_warn(defs):
    checks = {
        (spec.asset_key.to_user_string(), spec.name): spec
        for assets in defs.assets
        for spec in assets.check_specs
    }
    assert checks[("staging/stg_airlines", "unique_stg_airlines_carrier_code")].blocking
    assert checks[("marts/fct_flights", "accepted_values_fct_flights_origin__EWR__JFK__LGA")].blocking
    assert checks[("marts/fct_flights", "fct_flights_months_match_staging")].blocking
    destination = "relationships_fct_flights_destination__airport_code__ref_dim_airports_"
    assert not checks[("marts/fct_flights", destination)].blocking
    assert all(key.startswith(("staging/", "marts/")) for key, _ in checks), (
        "no check on another location's asset"
    )


def test_every_model_follows_its_inputs_and_the_sensor_is_on(defs, specs):
    labels = {key: spec.automation_condition.get_label() for key, spec in specs.items()}
    assert labels["marts/fct_flights"] == "follow_inputs"
    assert labels["staging/stg_flights"] == "when missing"  # a view only fct_flights reads, month by month
    others = set(specs) - {"marts/fct_flights", "staging/stg_flights"}
    assert {labels[key] for key in others} == {"follow_inputs or daily backstop"}
    (sensor,) = defs.sensors
    assert sensor.default_status == dg.DefaultSensorStatus.RUNNING


def test_dbt_runs_beside_this_interpreter_without_a_version_subprocess(defs):
    from pathlib import Path

    from dagster_dbt.compat import DBT_PYTHON_VERSION

    dbt = defs.resources["dbt"]
    assert Path(dbt.dbt_executable) == Path(sys.executable).parent / "dbt"
    assert dbt._cli_version == DBT_PYTHON_VERSION


#: dagster-dbt's own bookkeeping, which the webserver never shows (its asset metadata table skips them).
HIDDEN_BY_THE_UI = {"dagster_dbt/manifest", "dagster_dbt/dagster_dbt_translator"}


def test_no_asset_shows_unserializable_metadata(defs):
    """What the UI shows: every metadata entry survives serialization as itself, not as a
    "[SomeClass] (unserializable)" placeholder."""
    from dagster._core.remote_representation.external_data import asset_node_snaps_from_repo

    placeholders = {
        (snap.asset_key.to_user_string(), name): value.value
        for snap in asset_node_snaps_from_repo(defs.get_repository_def())
        for name, value in snap.metadata.items()
        if name not in HIDDEN_BY_THE_UI
        and isinstance(value, dg.TextMetadataValue)
        and value.value.endswith("(unserializable)")
    }
    assert placeholders == {}
