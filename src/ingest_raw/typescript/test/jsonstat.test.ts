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
  assert.equal(parsed.cells, 3840);
  assert.deepEqual(parsed.dimensions.map((d) => d.codes.length), [16, 120, 2]);
  assert.equal(describeCell(parsed, 3), "region=R01, month=2016M02, contents=change_12m");
  const record = csvRecords(parsed, COLUMNS, WHERE);
  assert.equal(record(1), '"R01","Northern Coast","2016M01","change_12m","12-month change (per cent)",,".."\n');
});

test("values as an object (sparse), labels, status, quoting", () => {
  const content = dataset({ value: { "0": 1, "3": 4 }, status: "p" });
  const parsed = parseJsonStat(content, WHERE);
  const record = csvRecords(parsed, ["month", "region", "region_label", "value", "status"], WHERE);
  assert.equal(record(0), '"2024M01","A","Alpha","1","p"\n');
  assert.equal(record(1), '"2024M02","A","Alpha",,"p"\n');
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
  assert.match(failure(Buffer.from([0x7b, 0xff, 0x7d])), /not valid UTF-8/);
});
