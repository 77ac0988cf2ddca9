"""PostgresComputeLogManager against the suite's real Postgres: a job's captured output written by one
instance is read back by another with nothing shared on disk (a webserver on another node); the size
cap, partial uploads, deletion and the error of an unreachable store."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import pytest
import yaml
from dagster._core.storage.compute_log_manager import ComputeIOType
from dagster._core.workspace.context import WorkspaceProcessContext
from dagster._core.workspace.load_target import EmptyWorkspaceTarget
from dagster_graphql.test.utils import execute_dagster_graphql

from devtools.asset_runs import CAPTURED_LOGS_QUERY, LOGS_CAPTURED_QUERY
from devtools.ports import free_port
from shared import postgres
from shared.compute_logs import CHUNK_BYTES, TABLE, ComputeLogStoreUnavailable, PostgresComputeLogManager
from shared.postgres import WarehouseSettings
from tests.warehouse_tools import scratch_database

LOG_KEY = ["run-1", "compute_logs", "step"]


def _postgres_db(settings: WarehouseSettings) -> dict:
    return {
        "hostname": settings.host,
        "port": settings.port,
        "username": settings.user,
        "password": settings.password,
        "db_name": settings.dbname,
    }


@pytest.fixture
def database(warehouse) -> Iterator[WarehouseSettings]:
    """A database of its own, as Dagster's: the manager creates its table there."""
    with scratch_database(warehouse, prefix="compute_logs") as settings:
        yield settings


def _manager(settings: WarehouseSettings, local_dir: Path, **config) -> PostgresComputeLogManager:
    return PostgresComputeLogManager(postgres_db=_postgres_db(settings), local_dir=str(local_dir), **config)


def _capture(manager: PostgresComputeLogManager, data: bytes, partial: bool = False) -> None:
    """What a step leaves in the local capture file, uploaded as the manager does."""
    path = Path(manager.local_manager.get_captured_local_path(LOG_KEY, "out"))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    manager.upload_to_cloud_storage(LOG_KEY, ComputeIOType.STDOUT, partial=partial)


def _chunks(settings: WarehouseSettings) -> list[tuple[bool, int]]:
    with postgres.connect(settings) as conn:
        return conn.execute(f"select partial, length(data) from {TABLE} order by seq").fetchall()


@dg.op
def chatty() -> None:
    print("hello from stdout")
    print("and from stderr", file=sys.stderr)


@dg.job
def chatty_job() -> None:
    chatty()


def _home(path: Path, settings: WarehouseSettings, local_dir: Path) -> Path:
    url = (
        f"postgresql+psycopg2://{settings.user}:{settings.password}@/{settings.dbname}"
        f"?host={settings.host}&port={settings.port}"
    )
    config = {
        "storage": {"postgres": {"postgres_url": url}},
        "compute_logs": {
            "module": "shared.compute_logs",
            "class": "PostgresComputeLogManager",
            "config": {"postgres_db": _postgres_db(settings), "local_dir": str(local_dir)},
        },
        "telemetry": {"enabled": False},
    }
    path.mkdir()
    (path / "dagster.yaml").write_text(yaml.safe_dump(config))
    return path


def _graphql(instance: dg.DagsterInstance, query: str, variables: dict) -> dict:
    """`query` answered as the webserver answers the UI, from `instance`."""
    with WorkspaceProcessContext(instance, EmptyWorkspaceTarget()) as workspace:
        result = execute_dagster_graphql(workspace.create_request_context(), query, variables)
    assert not result.errors, result.errors
    return result.data


def test_another_instance_reads_a_jobs_output_with_nothing_shared_on_disk(database, tmp_path):
    runner = dg.DagsterInstance.from_config(str(_home(tmp_path / "runner", database, tmp_path / "logs-a")))
    with runner:
        result = chatty_job.execute_in_process(instance=runner)
    assert result.success
    assert not any((tmp_path / "logs-a").rglob("*.out")), "local capture is removed after the upload"

    webserver = dg.DagsterInstance.from_config(str(_home(tmp_path / "web", database, tmp_path / "logs-b")))
    with webserver:
        assert isinstance(webserver.compute_log_manager, PostgresComputeLogManager)
        events = _graphql(webserver, LOGS_CAPTURED_QUERY, {"runId": result.run_id})["logsForRun"]["events"]
        (file_key,) = {event["fileKey"] for event in events if event.get("fileKey")}
        log_key = [result.run_id, "compute_logs", file_key]
        whole = _graphql(webserver, CAPTURED_LOGS_QUERY, {"logKey": log_key})
        assert "hello from stdout" in whole["capturedLogs"]["stdout"]
        assert "and from stderr" in whole["capturedLogs"]["stderr"]
        assert whole["capturedLogsMetadata"]["stdoutLocation"].startswith("postgres://")
        assert whole["capturedLogsMetadata"]["stdoutDownloadUrl"] == f"/logs/{'/'.join(log_key)}/out"
        # The UI tails in byte ranges, resuming at the cursor it was given.
        first = _graphql(webserver, CAPTURED_LOGS_QUERY, {"logKey": log_key, "limit": 5})["capturedLogs"]
        assert first["stdout"] == whole["capturedLogs"]["stdout"][:5]
        cursor = {"logKey": log_key, "cursor": first["cursor"]}
        rest = _graphql(webserver, CAPTURED_LOGS_QUERY, cursor)["capturedLogs"]
        assert first["stdout"] + rest["stdout"] == whole["capturedLogs"]["stdout"]
    assert not any((tmp_path / "logs-b").rglob("*.out")), "reads fetch ranges, no file is downloaded"


def test_a_log_over_the_cap_is_stored_truncated_in_bounded_chunks(database, tmp_path):
    cap = 2 * CHUNK_BYTES + 500
    log = bytes(range(256)) * (3 * CHUNK_BYTES // 256)
    manager = _manager(database, tmp_path, max_log_bytes=cap)
    _capture(manager, log)

    marker = f"\n[truncated: only the first {cap} bytes of this log are stored (max_log_bytes)]\n".encode()
    assert [length for _, length in _chunks(database)] == [CHUNK_BYTES, CHUNK_BYTES, 500, len(marker)]
    reader = _manager(database, tmp_path / "elsewhere")
    stored, end = reader.get_log_data_for_type(LOG_KEY, ComputeIOType.STDOUT, 0, None)
    assert stored == log[:cap] + marker
    assert end == cap + len(marker)
    across = reader.get_log_data_for_type(LOG_KEY, ComputeIOType.STDOUT, CHUNK_BYTES - 10, 20)
    assert across == (log[CHUNK_BYTES - 10 : CHUNK_BYTES + 10], CHUNK_BYTES + 10)
    assert reader.get_log_data_for_type(LOG_KEY, ComputeIOType.STDOUT, end, 20) == (b"", end)


def test_the_final_upload_replaces_partial_ones(database, tmp_path):
    manager = _manager(database, tmp_path)
    reader = _manager(database, tmp_path / "elsewhere")
    _capture(manager, b"first line\n", partial=True)
    _capture(manager, b"first line\nsecond line\n", partial=True)
    assert reader.get_log_data_for_type(LOG_KEY, ComputeIOType.STDOUT, 0, None)[0] == (
        b"first line\nsecond line\n"
    )
    assert not reader.cloud_storage_has_logs(LOG_KEY, ComputeIOType.STDOUT)

    final = b"first line\nsecond line\nlast line\n"
    _capture(manager, final)
    _capture(manager, b"a late partial upload\n", partial=True)
    assert reader.get_log_data_for_type(LOG_KEY, ComputeIOType.STDOUT, 0, None)[0] == final
    assert _chunks(database) == [(False, len(final))]
    reader.download_from_cloud_storage(LOG_KEY, ComputeIOType.STDOUT)  # the webserver's download link
    assert Path(reader.local_manager.get_captured_local_path(LOG_KEY, "out")).read_bytes() == final


def test_delete_logs_removes_them(database, tmp_path):
    manager = _manager(database, tmp_path)
    _capture(manager, b"kept\n")
    other = ["run-2", "compute_logs", "step"]
    path = Path(manager.local_manager.get_captured_local_path(other, "err"))
    path.parent.mkdir(parents=True)
    path.write_bytes(b"gone\n")
    manager.upload_to_cloud_storage(other, ComputeIOType.STDERR)

    manager.delete_logs(prefix=["run-2"])
    assert not manager.cloud_storage_has_logs(other, ComputeIOType.STDERR)
    assert manager.cloud_storage_has_logs(LOG_KEY, ComputeIOType.STDOUT)
    manager.delete_logs(log_key=LOG_KEY)
    assert manager.get_log_data_for_type(LOG_KEY, ComputeIOType.STDOUT, 0, None) == (None, 0)
    assert _chunks(database) == []


def test_an_unreachable_store_is_named_without_the_password(tmp_path):
    port = free_port()
    settings = WarehouseSettings(
        host="127.0.0.1", port=port, user="dagster", dbname="dagster", password="s3cret-pw"
    )
    manager = _manager(settings, tmp_path)
    with pytest.raises(
        ComputeLogStoreUnavailable, match=f"compute log store.*Postgres at 127.0.0.1:{port}"
    ) as error:
        manager.get_log_data(LOG_KEY)
    assert "s3cret-pw" not in str(error.value)
