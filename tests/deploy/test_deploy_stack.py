"""Stack-local: the production topology as local processes, one stack shared by the module.

Environments from each Dockerfile's own build commands, Postgres initialised by the compose init
script (real least-privilege roles), code servers, webserver and daemon with the repository's
workspace.yaml and dagster.yaml; runs launched through the webserver's GraphQL API.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator

import psycopg
import pytest

from devtools import asset_runs
from devtools.asset_runs import launch_plan
from devtools.ports import free_port
from devtools.stack_local import (
    LocalStack,
    Ports,
    Proof,
    StackError,
    free_ports,
    prove,
    resume_sensors,
)
from shared import postgres
from tests.deploy.deploy_helpers import LOCATIONS, run_init_script
from tests.process_tools import processes_mentioning, wait_until_gone

MONTH = "2013-01-01"


@pytest.fixture(scope="module")
def stack(tmp_path_factory) -> Iterator[LocalStack]:
    workdir = tmp_path_factory.mktemp("stack-local")
    with LocalStack(workdir, free_ports(LOCATIONS), say=lambda message: None) as running:
        yield running
    left = wait_until_gone(str(workdir), timeout=10)
    assert not left, f"processes left behind by the stack: {[process.info['cmdline'] for process in left]}"


@pytest.fixture(scope="module")
def proof(stack) -> Proof:
    return prove(stack, MONTH)


def connect_as(stack: LocalStack, location: str) -> psycopg.Connection:
    """A connection as the location's own role (the embedded server trusts local connections)."""
    return postgres.connect(stack.settings.replace(user=stack.role(location)), autocommit=True)


def test_environments_are_the_images_installs(stack):
    for location in stack.locations:
        site = stack.environment_dir(location.name) / "lib" / "python3.11" / "site-packages"
        assert (site / location.name / "definitions.py").is_file(), "installed, not editable"
        # The working tree may be edited while the suite runs: compare what existed at build time.
        sources = [
            path.relative_to(location.member_dir)
            for path in location.member_dir.rglob("*.py")
            if path.stat().st_mtime < stack.built_at
        ]
        assert sources, location.name
        stale = [
            str(path)
            for path in sources
            if (site / path).read_bytes() != (location.member_dir / path).read_bytes()
        ]
        assert not stale, f"{location.name}: installed files differ from the sources: {stale}"
        assert not list(site.glob("__editable__*")), location.name
        assert not (site / "dbt").exists() or location.name == "marts", "dbt only in the marts image"
    platform_site = stack.environment_dir("platform") / "lib" / "python3.11" / "site-packages"
    assert (platform_site / "dagster_webserver").is_dir() and (platform_site / "dagster_postgres").is_dir()
    assert not [location.name for location in stack.locations if (platform_site / location.name).exists()]


def test_marts_manifest_was_prepared_at_build(stack):
    prepared = stack.environment_dir("marts") / "var" / "marts-dbt"
    assert len(list(prepared.glob("*/manifest.json"))) == 1


def test_every_location_loads_from_its_code_server(stack):
    states = stack.wait_until_loaded(timeout=60)
    assert states == {location.name: {"status": "LOADED", "error": None} for location in stack.locations}


def test_sources_then_marts_succeed_with_rows(proof):
    assert [run.status for run in proof.runs] == ["SUCCESS"] * len(proof.runs)
    assert {run.location for run in proof.runs} == {location.name for location in LOCATIONS}
    assert proof.marts_rows and all(rows > 0 for rows in proof.marts_rows.values()), proof.marts_rows


def test_only_the_proofs_runs_ran_with_automation_paused(stack, proof):
    assert proof.paused_sensors["marts"], "marts' automation sensor runs by default"
    assert asset_runs.sensor_statuses(stack.url, "marts") == dict.fromkeys(
        proof.paused_sensors["marts"], "STOPPED"
    )
    assert asset_runs.run_ids(stack.url) == {run.run_id for run in proof.runs}


def test_each_location_wrote_as_its_own_role(stack, proof):
    owners_by_schema: dict[str, set[str]] = {}
    for relation, owner in proof.owners.items():
        owners_by_schema.setdefault(relation.split(".")[0], set()).add(owner)
    assert owners_by_schema == {
        schema: {stack.role(location.name)} for location in LOCATIONS for schema in location.writes
    }


def test_flights_month_loaded_as_a_partition(stack, proof):
    with postgres.connect(stack.settings) as conn:
        months = conn.execute("select distinct year, month from raw.flights order by 1, 2").fetchall()
    assert months == [(2013, 1)]


FORBIDDEN = [
    # the ingest role writes raw only
    ("ingest_raw", "create table marts.intruder (id int)"),
    ("ingest_raw", "create table staging.intruder (id int)"),
    ("ingest_raw", "insert into marts.dim_carriers select * from marts.dim_carriers limit 1"),
    ("ingest_raw", "delete from marts.dim_carriers"),
    ("ingest_raw", "drop table marts.dim_carriers"),
    # the marts role reads raw and never writes it
    ("marts", "create table raw.intruder (id int)"),
    ("marts", "insert into raw.airlines select * from raw.airlines limit 1"),
    ("marts", "update raw.airlines set name = name"),
    ("marts", "delete from raw.airlines"),
    ("marts", "truncate raw.airlines"),
    ("marts", "drop table raw.airlines"),
]


@pytest.mark.parametrize(("location", "statement"), FORBIDDEN)
def test_each_role_is_refused_outside_its_schemas(stack, proof, location, statement):
    with connect_as(stack, location) as conn, pytest.raises(psycopg.errors.InsufficientPrivilege):
        conn.execute(statement)


def test_marts_role_reads_raw_and_nobody_else_reaches_dagster_storage(stack, proof):
    with connect_as(stack, "marts") as conn:
        assert conn.execute("select count(*) from raw.airlines").fetchone()[0] > 0
    for location in ("ingest_raw", "marts"):
        settings = stack.settings.replace(user=stack.role(location), dbname="dagster")
        with pytest.raises(psycopg.OperationalError, match="permission denied for database"):
            postgres.connect(settings).close()


def test_a_broken_location_shows_its_error_and_the_rest_keeps_working(stack, proof, tmp_path):
    """marts fails to import (a shadowing package raising ImportError): the webserver answers, shows
    the error for marts, and ingest_raw still loads and runs; marts recovers once fixed."""
    shadow = tmp_path / "shadow" / "marts"
    shadow.mkdir(parents=True)
    (shadow / "__init__.py").write_text("")
    (shadow / "definitions.py").write_text("import a_module_that_is_not_installed  # noqa: F401\n")
    try:
        entry = stack.restart_code_server("marts", {"PYTHONPATH": str(shadow.parent)})
        assert entry["locationOrLoadError"]["__typename"] == "PythonError"
        assert "a_module_that_is_not_installed" in entry["locationOrLoadError"]["message"]

        states = stack.wait_until_loaded(timeout=60, allow_errors=True)
        assert states["ingest_raw"] == {"status": "LOADED", "error": None}
        assert "a_module_that_is_not_installed" in states["marts"]["error"]
        run = stack.materialize("ingest_raw", [["raw", "airlines"]], partition=None, timeout=300)
        assert run.status == "SUCCESS"
    finally:
        entry = stack.restart_code_server("marts")
    assert entry["locationOrLoadError"]["__typename"] == "RepositoryLocation"


def test_paused_sensors_resume_as_their_code_declares(stack, proof):
    resume_sensors(stack, proof)
    assert asset_runs.sensor_statuses(stack.url, "marts") == dict.fromkeys(
        proof.paused_sensors["marts"], "RUNNING"
    )


def test_launch_plan_orders_partitioned_between_their_upstream_and_downstream():
    def node(name, partitioned, *deps):
        return {
            "assetKey": {"path": [name]},
            "isPartitioned": partitioned,
            "dependencyKeys": [{"path": [d]} for d in deps],
        }

    nodes = [
        node("summary", False, "fact", "dim"),
        node("fact", True, "staged", "dim"),
        node("staged", True, "outside"),
        node("dim", False, "outside"),
    ]
    assert launch_plan(nodes) == [([["dim"]], False), ([["fact"], ["staged"]], True), ([["summary"]], False)]


def test_init_script_names_a_missing_env_file(tmp_path):
    done = run_init_script(tmp_path)
    assert done.returncode != 0
    assert f"{tmp_path}/ingest_raw.env is missing (create it from ingest_raw.env.template)" in done.stderr


def test_init_script_refuses_two_warehouses(tmp_path):
    (tmp_path / "ingest_raw.env").write_text("WAREHOUSE_USER=a\nWAREHOUSE_PASSWORD=x\nWAREHOUSE_DB=one\n")
    (tmp_path / "marts.env").write_text("WAREHOUSE_USER=b\nWAREHOUSE_PASSWORD=y\nWAREHOUSE_DB=two\n")
    done = run_init_script(tmp_path)
    assert done.returncode != 0
    assert "WAREHOUSE_DB differs: 'one' (ingest_raw.env) vs 'two' (marts.env)" in done.stderr


def test_a_busy_port_is_a_clear_error_before_anything_starts(tmp_path):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        ports = Ports(webserver=busy.getsockname()[1], locations={loc.name: free_port() for loc in LOCATIONS})
        expected = f"port {ports.webserver} for webserver is in use"
        with pytest.raises(StackError, match=expected), LocalStack(tmp_path, ports):
            pass
    assert not processes_mentioning(str(tmp_path))
