import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { test } from "node:test";

import { LoadError } from "../src/errors.js";
import { csvRecords, describeCell, parseJsonStat } from "../src/jsonstat.js";

const FIXTURE = readFileSync(new URL("../data/regional_cpi.json", import.meta.url));
const WHERE = "source 'regional_cpi': cpi.json";
const COLUMNS = ["region", "region_label", "month", "contents", "contents_label", "value", "status"];

function dataset(overrides: Record<string, unknown>): Buffer {
  const base = {
    version: "2.0",
    class: "dataset",
    id: ["region", "month"],
    size: [2, 2],
    dimension: {
      region: { category: { index: ["A", "B"], label: { A: "Alpha", B: "Beta" } } },
      month: { category: { index: { "2024M01": 0, "2024M02": 1 } } },
    },
    value: [1, 2.5, null, 4],
    status: { "2": ".." },
  };
  return Buffer.from(JSON.stringify({ ...base, ...overrides }));
}

function failure(content: Buffer, columns = ["region", "month", "value"]): string {
  try {
    csvRecords(parseJsonStat(content, WHERE), columns, WHERE);
  } catch (error) {
    assert.ok(error instanceof LoadError);
    assert.equal(error.exitCode, 65);
    return error.message;
  }
  assert.fail("expected a LoadError");
}

test("the fixture: 16 regions x 120 months x 2 contents, cells in row-major order", () => {
  const parsed = parseJsonStat(FIXTURE, WHERE);
  assert.equal([...parsed.cells()].length, 3840);
  assert.deepEqual(parsed.dimensions.map((d) => d.codes.length), [16, 120, 2]);
  assert.equal(describeCell(parsed, 3), "region=R01, month=2016M02, contents=change_12m");
  const record = csvRecords(parsed, COLUMNS, WHERE);
  assert.equal(record(1), "R01,Northern Coast,2016M01,change_12m,12-month change (per cent),,..\n");
});

test("values as an object (sparse): a row per listed cell; labels, status, quoting", () => {
  const content = dataset({ value: { "3": 4, "0": null }, status: { "0": "p", "3": "" } });
  const parsed = parseJsonStat(content, WHERE);
  assert.deepEqual([...parsed.cells()], [0, 3]);
  const record = csvRecords(parsed, ["month", "region", "region_label", "value", "status"], WHERE);
  assert.equal(record(0), "2024M01,A,Alpha,,p\n");
  assert.equal(record(3), '2024M02,B,Beta,4,""\n'); // an empty string stays a string, quoted
});

test("what JSON.parse lets through is refused with its place", () => {
  assert.match(failure(Buffer.from('{"version": "2.0", "version": "2.0"}')), /column 20: key "version" appears twice/);
  assert.match(failure(Buffer.from('{\n"value": [1, 1e400]}')), /line 2, column 14: number 1e400 is out of range/);
  assert.match(failure(Buffer.from("[".repeat(70))), /nesting deeper than 64 levels/);
  assert.match(failure(dataset({ status: [1, 2, 3, 4] })), /"status" \[0\] is 1; expected a string or null/);
});

test("bad datasets fail naming the place and what was expected", () => {
  assert.match(failure(dataset({ version: "1.0" })), /expected "version": "2.0"/);
  assert.match(failure(dataset({ size: [2, 3] })), /dimension month: 2 categories but size 3/);
  assert.match(failure(dataset({ value: [1, 2, 3] })), /"value" has 3 cells; the dimension sizes multiply to 4/);
  assert.match(failure(dataset({ value: [1, "x", 3, 4] })), /"value" \[1\] is "x"; expected a number or null/);
  assert.match(failure(dataset({ value: { "9": 1 } })), /key "9" is not a cell index below 4/);
  assert.match(failure(dataset({}), ["region", "value"]), /dimension\(s\) month have no column/);
  assert.match(failure(dataset({}), ["region", "month", "value", "price"]), /column\(s\) price match no dimension/);
  const broken = Buffer.from('{\n  "version": "2.0",\n  "class": "dataset"\n  "id": []\n}');
  assert.match(failure(broken), /^source 'regional_cpi': cpi\.json line 4, column 3: invalid JSON/);
  assert.match(failure(Buffer.from([0x7b, 0x0a, 0x22, 0xff, 0x7d])), /line 2, column 2: not valid UTF-8 \(byte 0xff\)/);
});
