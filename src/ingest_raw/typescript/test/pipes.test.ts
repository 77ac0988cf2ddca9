import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";

import {
  CONTEXT_ENV,
  decodeParam,
  encodeParam,
  MESSAGES_ENV,
  metadata,
  openDagsterPipes,
  serialize,
  withDagsterPipes,
} from "../src/pipes.js";

const CONTEXT = {
  asset_keys: ["raw/regional_cpi"],
  partition_key: null,
  run_id: "run-1",
  job_name: "job",
  retry_number: 0,
  extras: { source: { name: "regional_cpi" } },
};

function launched(): { env: NodeJS.ProcessEnv; messages: () => Record<string, any>[] } {
  const folder = mkdtempSync(join(tmpdir(), "pipes-test-"));
  const context = join(folder, "context.json");
  const messages = join(folder, "messages");
  writeFileSync(context, JSON.stringify(CONTEXT));
  return {
    env: { [CONTEXT_ENV]: encodeParam({ path: context }), [MESSAGES_ENV]: encodeParam({ path: messages }) },
    messages: () => readFileSync(messages, "utf8").trim().split("\n").map((line) => JSON.parse(line)),
  };
}

test("the bootstrap parameters are base64 of zlib-compressed JSON, as dagster_pipes.encode_param writes them", () => {
  // python -c 'from dagster_pipes import encode_param; print(encode_param({"path": "/tmp/x"}))'
  assert.deepEqual(decodeParam("eJyrVipILMlQslJQ0i/JLdCvUKoFADYYBa8="), { path: "/tmp/x" });
  assert.deepEqual(decodeParam(encodeParam({ a: [1, "b", null] })), { a: [1, "b", null] });
});

test("float metadata is written as Python writes floats: 2.0, not 2; other values untouched", () => {
  const line = serialize({
    metadata: { a: metadata.float(2), b: metadata.float(0.5), c: metadata.float(NaN), d: metadata.int(2) },
    text: "raw_value",
  });
  assert.equal(
    line,
    '{"metadata":{"a":{"type":"float","raw_value":2.0},"b":{"type":"float","raw_value":0.5},' +
      '"c":{"type":"float","raw_value":NaN},"d":{"type":"int","raw_value":2}},"text":"raw_value"}',
  );
});

test("without the Dagster variables Pipes is off: null, nothing written", async () => {
  assert.equal(openDagsterPipes({}), null);
  assert.equal(await withDagsterPipes(async (pipes) => pipes, {}), null);
});

test("under Dagster: opened, the context, typed metadata, checks, logs, custom messages, closed", () => {
  const { env, messages } = launched();
  const pipes = openDagsterPipes(env)!;
  assert.equal(pipes.assetKey, "raw/regional_cpi");
  assert.equal(pipes.partitionKey, null);
  assert.deepEqual(pipes.extra("source"), { name: "regional_cpi" });
  pipes.reportAssetMaterialization({
    metadata: {
      rows: metadata.int(3),
      seconds: metadata.float(0.5),
      label: metadata.text("x"),
      info: metadata.json({ a: 1 }),
      schema: metadata.tableSchema([{ name: "id", type: "integer", nullable: false }]),
    },
    dataVersion: "abc",
  });
  assert.throws(() => pipes.reportAssetMaterialization(), /already materialized/);
  pipes.reportAssetCheck({ checkName: "not_empty", passed: true, severity: "WARN" });
  pipes.log("hello", "WARNING");
  pipes.reportCustomMessage({ error: "none" });
  pipes.close();
  pipes.close();
  assert.throws(() => pipes.log("late"), /closed/);

  const sent = messages();
  assert.ok(sent.every((message) => message.__dagster_pipes_version === "0.1"));
  assert.deepEqual(
    sent.map((message) => message.method),
    ["opened", "report_asset_materialization", "report_asset_check", "log", "report_custom_message", "closed"],
  );
  const materialization = sent[1].params;
  assert.equal(materialization.asset_key, "raw/regional_cpi");
  assert.equal(materialization.data_version, "abc");
  assert.deepEqual(materialization.metadata.rows, { type: "int", raw_value: 3 });
  assert.deepEqual(materialization.metadata.schema.raw_value.columns[0], {
    name: "id",
    type: "integer",
    description: null,
    constraints: { nullable: false, unique: false },
  });
  assert.deepEqual(sent[2].params, {
    asset_key: "raw/regional_cpi",
    check_name: "not_empty",
    passed: true,
    severity: "WARN",
    metadata: null,
  });
  assert.deepEqual(sent[3].params, { message: "hello", level: "WARNING" });
  assert.deepEqual(sent[5].params, {});
});

test("an uncaught error closes the session with it as the exception, then propagates", async () => {
  const { env, messages } = launched();
  await assert.rejects(
    withDagsterPipes(async () => {
      throw new RangeError("boom", { cause: new Error("root") });
    }, env),
    /boom/,
  );
  const closed = messages().at(-1)!;
  assert.equal(closed.method, "closed");
  assert.equal(closed.params.exception.name, "RangeError");
  assert.equal(closed.params.exception.message, "RangeError: boom\n");
  assert.ok(closed.params.exception.stack.length > 0);
  assert.equal(closed.params.exception.cause.message, "Error: root\n");
});

test("context given inline and messages on stderr are understood; unknown channels are refused", () => {
  const env = { [CONTEXT_ENV]: encodeParam({ data: CONTEXT }), [MESSAGES_ENV]: encodeParam({ stdio: "stderr" }) };
  assert.equal(openDagsterPipes(env)!.assetKey, "raw/regional_cpi");
  const bad = { [CONTEXT_ENV]: encodeParam({ data: CONTEXT }), [MESSAGES_ENV]: encodeParam({ bucket: "s3" }) };
  assert.throws(() => openDagsterPipes(bad), /unsupported message channel/);
  assert.throws(() => metadata.int(1.5), /safe integer/);
});
