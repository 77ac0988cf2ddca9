/**
 * The command line of a TypeScript source program, and its reporting: standalone it loads the table
 * and prints a summary; launched by Dagster (Pipes) it loads exactly the declaration handed over and
 * reports the materialization, the checks and the logs.
 *
 * Options: --input PATH_OR_URL (instead of the declared one), --timeout SECONDS (an HTTP read may
 * stall), --partition KEY (refused: these sources are not partitioned).
 * Exit codes: 0 loaded, 65 permanent (bad data, HTTP 4xx), 75 transient (HTTP 5xx, timeouts, lost
 * connections), 130 interrupted (SIGINT/SIGTERM; rolled back). Test hook: INGEST_PAUSE_AT, see load.ts.
 */

import { parseArgs } from "node:util";

import { DECLARATION_EXTRA, type Declaration, parseDeclaration } from "./declaration.js";
import { EXIT_INTERRUPTED, Interrupted, LoadError } from "./errors.js";
import { readInput } from "./input.js";
import { csvRecords, describeCell, parseJsonStat } from "./jsonstat.js";
import { load, type LoadResult } from "./load.js";
import { metadata, type PipesSession, withDagsterPipes } from "./pipes.js";

export const FORMAT = "json-stat";

export async function runJsonStatSource(catalog: Declaration, argv: string[] = process.argv.slice(2)): Promise<number> {
  const { values: options } = parseArgs({
    args: argv,
    options: { input: { type: "string" }, timeout: { type: "string" }, partition: { type: "string" } },
  });
  const interrupt = new AbortController();
  for (const signal of ["SIGINT", "SIGTERM"] as const) process.on(signal, () => interrupt.abort());
  return withDagsterPipes(async (pipes) => {
    let name = catalog.name;
    try {
      const handed = pipes?.extra(DECLARATION_EXTRA);
      const declaration = parseDeclaration(handed ?? catalog, FORMAT);
      name = declaration.name;
      if (options.partition) throw new LoadError(`source '${name}' is not partitioned; got partition ${options.partition}`);
      const started = performance.now();
      const location = options.input ?? declaration.input;
      const where = `source '${name}': ${location}`;
      const timeout = Number(options.timeout ?? declaration.timeout_seconds);
      const input = await readInput(location, timeout, interrupt.signal, declaration.max_record_bytes);
      const dataset = parseJsonStat(input.content, where);
      const record = csvRecords(dataset, declaration.columns.map((column) => column.name), where);
      const rows = { count: dataset.cells, record, describe: (index: number) => `value[${index}] (${describeCell(dataset, index)})` };
      const result = await load(declaration, rows, where, interrupt.signal);
      const seconds = (performance.now() - started) / 1000;
      const summary =
        `ingest: loaded ${result.table}: ${result.rowsLoaded} rows (previously ${result.previousRows}) ` +
        `from ${location} in ${seconds.toFixed(2)} s, sha256 ${input.sha256.slice(0, 12)}`;
      process.stderr.write(summary + "\n");
      if (pipes) report(pipes, declaration, result, { ...input, seconds, dataset: dataset.label, updated: dataset.updated });
      return 0;
    } catch (error) {
      if (error instanceof Interrupted) {
        process.stderr.write(`ingest: ${name} interrupted, rolled back\n`);
        return EXIT_INTERRUPTED;
      }
      if (!(error instanceof LoadError)) throw error; // a bug: Pipes reports it, the exit code is 1
      process.stderr.write(`ingest error: ${error.message}\n`);
      pipes?.reportCustomMessage({ error: error.message, exit_code: error.exitCode });
      return error.exitCode;
    }
  });
}

interface Loaded {
  location: string;
  bytesRead: number;
  sha256: string;
  seconds: number;
  dataset: string;
  updated: string;
}

function report(pipes: PipesSession, declaration: Declaration, result: LoadResult, loaded: Loaded): void {
  const keyColumns = new Set(declaration.primary_key);
  pipes.reportAssetMaterialization({
    metadata: {
      "dagster/row_count": metadata.int(result.rowsLoaded),
      "dagster/column_schema": metadata.tableSchema(
        declaration.columns.map((column) => ({
          name: column.name,
          type: column.type,
          description: column.description || null,
          nullable: !keyColumns.has(column.name),
        })),
      ),
      "dagster/table_name": metadata.text(result.table),
      previous_rows: metadata.int(result.previousRows),
      bytes_read: metadata.int(loaded.bytesRead),
      load_seconds: metadata.float(Math.round(loaded.seconds * 1000) / 1000),
      input_sha256: metadata.text(loaded.sha256),
      input: metadata.text(loaded.location),
      dataset: metadata.json({ label: loaded.dataset, updated: loaded.updated }),
    },
    dataVersion: loaded.sha256,
  });
  const change = result.previousRows ? (result.rowsLoaded - result.previousRows) / result.previousRows : null;
  pipes.reportAssetCheck({
    checkName: "not_empty",
    passed: result.rowsLoaded > 0 || declaration.allow_empty,
    metadata: { rows: metadata.int(result.rowsLoaded) },
  });
  pipes.reportAssetCheck({
    checkName: "row_count_change",
    passed: change === null || Math.abs(change) <= declaration.max_row_count_change,
    severity: "WARN",
    metadata: {
      rows: metadata.int(result.rowsLoaded),
      previous_rows: metadata.int(result.previousRows),
      relative_change: change === null ? { type: "null", raw_value: null } : metadata.float(change),
      max_relative_change: metadata.float(declaration.max_row_count_change),
    },
  });
  if (declaration.primary_key.length) {
    pipes.reportAssetCheck({
      checkName: "primary_key_unique",
      passed: true, // the table's primary key constraint refused any duplicate during COPY
      metadata: {
        primary_key: metadata.text(declaration.primary_key.join(", ")),
        enforced_by: metadata.text(`primary key constraint of ${result.table}`),
      },
    });
  }
  pipes.log(`loaded ${result.table}: ${result.rowsLoaded} rows from ${loaded.location}`);
}
