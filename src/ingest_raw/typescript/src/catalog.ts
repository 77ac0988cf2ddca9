/**
 * Declarations of the TypeScript sources for standalone runs (`npm run ingest:<source>`), in the shape
 * of the ingest_raw catalog's `Source.to_dict()`. Under Dagster the launcher hands the program its
 * declaration instead; a test keeps these equal to the Python catalog.
 */

import type { Declaration } from "./declaration.js";

const OWNERS = ["team:data-platform"];
const DAILY_AT_6 = "0 6 * * *";

function columns(spec: string): Declaration["columns"] {
  return spec.split(",").map((item) => {
    const [name, ...type] = item.trim().split(" ");
    return { name, type: type.join(" "), description: "" };
  });
}

export const REGIONAL_CPI: Declaration = {
  name: "regional_cpi",
  input: "data/regional_cpi.json",
  columns: columns(
    "region text, region_label text, month text, contents text, contents_label text, value double precision, status text",
  ),
  primary_key: ["region", "month", "contents"],
  table: "regional_cpi",
  description: "Consumer price index and its 12-month change by region and month (JSON-stat, synthetic).",
  format: { kind: "json-stat" },
  partition: null,
  allow_empty: false,
  max_rejected_rows: 0,
  max_row_count_change: 0.5,
  owners: OWNERS,
  cron_schedule: DAILY_AT_6,
  timeout_seconds: 60,
  max_record_bytes: 64 * 1024 * 1024,
  lock_timeout_seconds: 60,
  program: { command: ["node", "dist/sources/regional_cpi.js"], kind: "typescript" },
  run_resources: null,
};

export const SOURCES: Record<string, Declaration> = { [REGIONAL_CPI.name]: REGIONAL_CPI };
