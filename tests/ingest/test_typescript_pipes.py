"""The TypeScript Pipes module against Dagster's own side of the protocol (`open_pipes_session` with the
temp-file injector and reader the launcher uses): what node reports arrives typed; and against the
protocol's reference implementation (the dagster_pipes package): from the same context, node writes
the same messages."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import dagster as dg
import dagster_pipes
import pytest

from devtools import typescript

pytestmark = pytest.mark.skipif(typescript.node() is None, reason="node is not installed")

REPORTER = """
const { withDagsterPipes, metadata } = await import("./dist/pipes.js");
await withDagsterPipes(async (pipes) => {
  pipes.reportAssetMaterialization({
    metadata: {
      rows: metadata.int(3),
      share: metadata.float(0.25),
      whole: metadata.float(2),
      greeting: metadata.text(String(pipes.extra("greeting"))),
      detail: metadata.json({ partition: pipes.partitionKey, keys: pipes.context.asset_keys }),
      schema: metadata.tableSchema([
        { name: "id", type: "integer", nullable: false },
        { name: "note", type: "text" },
      ]),
    },
    dataVersion: "v1",
  });
  const seen = { seen: metadata.int(3) };
  pipes.reportAssetCheck({ checkName: "positive", passed: false, severity: "WARN", metadata: seen });
  pipes.log("hello from node", "WARNING");
  pipes.reportCustomMessage({ from: "node" });
  if (process.env.PROBE_FAIL) throw new RangeError("node failed on purpose");
});
"""


def probe_asset(project, custom: list):
    @dg.asset(check_specs=[dg.AssetCheckSpec("positive", asset="probe")])
    def probe(context):
        with dg.open_pipes_session(
            context=context,
            context_injector=dg.PipesTempFileContextInjector(),
            message_reader=dg.PipesTempFileMessageReader(),
            extras={"greeting": "hej"},
        ) as session:
            done = subprocess.run(
                ["node", "--input-type=module", "-e", REPORTER],
                cwd=project,
                env=os.environ | session.get_bootstrap_env_vars(),
                capture_output=True,
                text=True,
                timeout=60,
            )
        custom.extend(session.get_custom_messages())
        if done.returncode != 0:
            raise dg.Failure(description=done.stderr[-2000:])
        yield from session.get_results()

    return probe


def test_what_node_reports_arrives_typed_in_dagster():
    custom: list = []
    result = dg.materialize([probe_asset(typescript.build(), custom)])
    assert result.success
    (materialization,) = result.asset_materializations_for_node("probe")
    metadata = materialization.metadata
    assert metadata["rows"] == dg.IntMetadataValue(3)
    assert metadata["share"] == dg.FloatMetadataValue(0.25)
    assert metadata["whole"] == dg.FloatMetadataValue(2.0)  # JSON.stringify alone would send an int
    assert metadata["greeting"] == dg.TextMetadataValue("hej")
    assert metadata["detail"] == dg.JsonMetadataValue({"partition": None, "keys": ["probe"]})
    schema = metadata["schema"].schema
    assert [(column.name, column.type, column.constraints.nullable) for column in schema.columns] == [
        ("id", "integer", False),
        ("note", "text", True),
    ]
    assert materialization.tags["dagster/data_version"] == "v1"
    (check,) = [
        e.event_specific_data for e in result.all_events if e.event_type_value == "ASSET_CHECK_EVALUATION"
    ]
    assert (check.check_name, check.passed, check.severity) == ("positive", False, dg.AssetCheckSeverity.WARN)
    assert check.metadata["seen"] == dg.IntMetadataValue(3)
    assert custom == [{"from": "node"}]


def test_an_uncaught_error_reaches_dagster_as_the_exception(monkeypatch):
    monkeypatch.setenv("PROBE_FAIL", "1")
    with dg.DagsterInstance.ephemeral() as instance:
        result = dg.materialize(
            [probe_asset(typescript.build(), [])], instance=instance, raise_on_error=False
        )
        assert not result.success
        (event,) = [
            entry.dagster_event
            for entry in instance.all_logs(result.run_id, of_type=dg.DagsterEventType.ENGINE_EVENT)
            if "closed with exception" in entry.dagster_event.message
        ]
    error = event.event_specific_data.error
    assert (error.cls_name, error.message) == ("RangeError", "RangeError: node failed on purpose\n")
    assert error.stack


SAME_REPORTS = """
const { withDagsterPipes, metadata, encodeParam } = await import("./dist/pipes.js");
await withDagsterPipes(async (pipes) => {
  pipes.reportAssetMaterialization({
    metadata: {
      rows: metadata.int(3),
      whole: metadata.float(2),
      greeting: metadata.text(String(pipes.extra("greeting"))),
    },
    dataVersion: "v1",
  });
  const seen = { seen: metadata.int(3) };
  pipes.reportAssetCheck({ checkName: "positive", passed: false, severity: "WARN", metadata: seen });
  pipes.log("hello", "WARNING");
  pipes.reportCustomMessage({ from: "x" });
  if (process.env.PROBE_FAIL) throw new RangeError("failed on purpose");
});
process.stdout.write(encodeParam({ path: "/tmp/x", extras: { a: [1, "b"] } }));
"""


#: The same reports through dagster_pipes, the protocol's reference implementation (in a process of its
#: own: dagster_pipes keeps one context per process).
PYTHON_REPORTS = """
import os, dagster_pipes
with dagster_pipes.open_dagster_pipes() as pipes:
    pipes.report_asset_materialization(
        metadata={
            "rows": {"raw_value": 3, "type": "int"},
            "whole": {"raw_value": 2.0, "type": "float"},
            "greeting": {"raw_value": pipes.extras["greeting"], "type": "text"},
        },
        data_version="v1",
    )
    seen = {"seen": {"raw_value": 3, "type": "int"}}
    pipes.report_asset_check(check_name="positive", passed=False, severity="WARN", metadata=seen)
    pipes.log.warning("hello")
    pipes.report_custom_message({"from": "x"})
    if os.environ.get("PROBE_FAIL"):
        RangeError = type("RangeError", (Exception,), {})
        raise RangeError("failed on purpose")
"""


@pytest.mark.parametrize("fail", [False, True], ids=["closed", "closed_with_an_exception"])
def test_node_writes_what_dagster_pipes_writes_from_the_same_context(tmp_path, fail):
    """Context and channels encoded by dagster_pipes; node's message lines equal the reference's."""
    context = {
        "asset_keys": ["probe"],
        "code_version_by_asset_key": None,
        "provenance_by_asset_key": None,
        "partition_key": None,
        "partition_key_range": None,
        "partition_time_window": None,
        "run_id": "run-1",
        "job_name": "job",
        "retry_number": 0,
        "extras": {"greeting": "hej"},
    }
    (tmp_path / "context.json").write_text(json.dumps(context))

    def env(messages: Path) -> dict[str, str]:
        return {
            dagster_pipes.DAGSTER_PIPES_CONTEXT_ENV_VAR: dagster_pipes.encode_param(
                {"path": str(tmp_path / "context.json")}
            ),
            dagster_pipes.DAGSTER_PIPES_MESSAGES_ENV_VAR: dagster_pipes.encode_param({"path": str(messages)}),
        }

    failing = {"PROBE_FAIL": "1"} if fail else {}
    reference = subprocess.run(
        [sys.executable, "-c", PYTHON_REPORTS],
        env=os.environ | env(tmp_path / "python.jsonl") | failing,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert reference.returncode == (1 if fail else 0), reference.stderr
    done = subprocess.run(
        ["node", "--input-type=module", "-e", SAME_REPORTS],
        cwd=typescript.build(),
        env=os.environ | env(tmp_path / "node.jsonl") | failing,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == (1 if fail else 0), done.stderr
    python, node = (
        [json.loads(line) for line in (tmp_path / name).read_text().splitlines()]
        for name in ("python.jsonl", "node.jsonl")
    )
    if fail:
        python_closed, node_closed = python[-1]["params"]["exception"], node[-1]["params"]["exception"]
        assert set(node_closed) == set(python_closed)
        assert (node_closed["name"], node_closed["message"]) == (
            python_closed["name"],
            python_closed["message"],
        )
        python[-1]["params"]["exception"] = node[-1]["params"]["exception"] = "compared above"
    assert node == python
    if not fail:
        assert dagster_pipes.decode_param(done.stdout) == {"path": "/tmp/x", "extras": {"a": [1, "b"]}}
