"""deploy/docker/migrate-instance, as Swarm runs it: before every service's command, all of them at
once on an empty database, on a real Postgres."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

import yaml

from shared import postgres
from tests.deploy.deploy_helpers import ROOT
from tests.warehouse_tools import scratch_database

SERVICES = 4


def test_services_starting_together_take_turns_on_the_lock_then_run(warehouse, tmp_path):
    """The lock is held here while every service starts: each waits on it before touching the schema
    (no table yet), and once it is free they take turns: every one succeeds, none meets a half-made
    schema (`relation "runs" already exists`), and each then runs its own command."""
    with scratch_database(warehouse, prefix="migrate") as settings:
        home = tmp_path / "dagster_home"
        home.mkdir()
        url = (
            f"postgresql+psycopg2://{settings.user}:{settings.password}@/{settings.dbname}"
            f"?host={settings.host}&port={settings.port}"
        )
        (home / "dagster.yaml").write_text(yaml.safe_dump({"storage": {"postgres": {"postgres_url": url}}}))
        env = os.environ | {
            "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",  # `dagster`
            "DAGSTER_HOME": str(home),
            "DAGSTER_PG_HOST": settings.host,
            "DAGSTER_PG_PORT": str(settings.port),
            "DAGSTER_PG_USER": settings.user,
            "DAGSTER_PG_PASSWORD": settings.password,
            "DAGSTER_PG_DB": settings.dbname,
        }
        script = ROOT / "deploy" / "docker" / "migrate-instance"
        (lock_key,) = re.findall(r'^LOCK_KEY = "(.+)"$', script.read_text(), re.MULTILINE)
        holder = postgres.connect(settings, autocommit=True)
        holder.execute("select pg_advisory_lock(hashtext(%s))", (lock_key,))
        services = [
            subprocess.Popen(
                [sys.executable, script, "--", sys.executable, "-c", f"print('service {number} runs')"],
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
            )
            for number in range(SERVICES)
        ]
        deadline = time.monotonic() + 300
        while _waiting_on_advisory_locks(settings) < SERVICES:
            assert time.monotonic() < deadline and all(s.poll() is None for s in services), "not waiting"
            time.sleep(0.5)
        assert _tables(settings) == set()
        holder.close()
        outputs = [service.communicate(timeout=300)[0] for service in services]
        tables = _tables(settings)
    for number, (service, output) in enumerate(zip(services, outputs, strict=True)):
        assert service.returncode == 0, output
        assert output.rstrip().endswith(f"service {number} runs"), output
        assert "already exists" not in output and "Traceback" not in output, output
    assert {"runs", "event_logs", "alembic_version", "jobs"} <= tables


def _tables(settings: postgres.WarehouseSettings) -> set[str]:
    with postgres.connect(settings) as conn:
        return {row[0] for row in conn.execute("select tablename from pg_tables where schemaname = 'public'")}


def _waiting_on_advisory_locks(settings: postgres.WarehouseSettings) -> int:
    with postgres.connect(settings) as conn:
        query = "select count(*) from pg_locks where locktype = 'advisory' and not granted"
        return conn.execute(query).fetchone()[0]
