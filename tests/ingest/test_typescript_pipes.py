"""The TypeScript Pipes module against Dagster's own side of the protocol (`open_pipes_session` with the
temp-file injector and reader the launcher uses): what node reports arrives typed."""

from __future__ import annotations

import os
import subprocess

import dagster as dg
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
    assert (error.cls_name, error.message) == ("RangeError", "node failed on purpose")
    assert error.stack
