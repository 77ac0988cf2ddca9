/**
 * Replace `raw.<table>` by the rows of a dataset, atomically: one transaction takes the table's advisory
 * lock, deletes the previous rows, COPYs the new ones (the table's types and primary key check each row
 * as it arrives), validates and commits. Readers see the previous rows until the commit; any failure,
 * a kill or SIGINT leaves them in place. The same lock keys and table checks as the Python loader.
 */

import { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";

import pg from "pg";
import { from as copyFrom } from "pg-copy-streams";

import { type Declaration, SCHEMA } from "./declaration.js";
import { Interrupted, LoadError } from "./errors.js";

export const PAUSE_ENV = "INGEST_PAUSE_AT";
export type Stage = "locked" | "copy" | "validate" | "commit";

/** format_type() spelling of the declared column types. */
const CATALOG_TYPES: Record<string, string> = {
  timestamptz: "timestamp with time zone",
  timestamp: "timestamp without time zone",
};
const TRANSIENT_SQLSTATES = new Set(["40001", "40P01", "55P03", "57P01", "57P02", "57P03", "53300"]);
const TRANSIENT_NETWORK = new Set(["ECONNREFUSED", "ECONNRESET", "ETIMEDOUT", "EHOSTUNREACH", "ENOTFOUND", "EPIPE"]);
const COPY_CONTEXT = /line (\d+)(?:, column (\w+))?/;
const WAREHOUSE_ENV = {
  host: "WAREHOUSE_HOST",
  port: "WAREHOUSE_PORT",
  user: "WAREHOUSE_USER",
  password: "WAREHOUSE_PASSWORD",
  database: "WAREHOUSE_DB",
} as const;

export interface LoadResult {
  table: string;
  rowsLoaded: number;
  previousRows: number;
}

export interface Rows {
  count: number;
  record(index: number): string;
  /** Where row `index` came from, for errors: e.g. "value[12] (region=R01, month=2016M01, contents=cpi)". */
  describe(index: number): string;
}

/** libpq-style settings from the WAREHOUSE_* variables; host may be a Unix socket directory. */
export function warehouseConfig(env: NodeJS.ProcessEnv = process.env): pg.ClientConfig {
  const missing = (["host", "user", "database"] as const).filter((key) => !env[WAREHOUSE_ENV[key]]).map((key) => WAREHOUSE_ENV[key]);
  if (missing.length) {
    throw new LoadError(`warehouse not configured: set ${missing.join(", ")} (see environments/*.env.template)`);
  }
  return {
    host: env.WAREHOUSE_HOST,
    port: Number(env.WAREHOUSE_PORT || 5432),
    user: env.WAREHOUSE_USER,
    password: env.WAREHOUSE_PASSWORD || undefined,
    database: env.WAREHOUSE_DB,
    application_name: "ingest-raw",
  };
}

/** With INGEST_PAUSE_AT=<stage>, announce the stage on stderr and wait there until interrupted (kill tests). */
async function pauseIfAsked(stage: Stage, interrupt: AbortSignal): Promise<void> {
  if (process.env[PAUSE_ENV] !== stage) return;
  process.stderr.write(`ingest: paused at ${stage} (pid ${process.pid})\n`);
  await new Promise((_, reject) => interrupt.addEventListener("abort", () => reject(new Interrupted(`interrupted at ${stage}`))));
}

export async function load(
  declaration: Declaration,
  rows: Rows,
  where: string,
  interrupt: AbortSignal,
  config: pg.ClientConfig = warehouseConfig(),
): Promise<LoadResult> {
  const table = `${SCHEMA}."${declaration.table}"`;
  const client = new pg.Client(config);
  try {
    await client.connect();
  } catch (error) {
    throw new LoadError(`cannot connect to the warehouse: ${(error as Error).message}`, true, { cause: error });
  }
  // Cancel the statement in progress (a COPY, a lock wait) from a second session; the rollback follows.
  const cancel = () => void cancelBackend(config, (client as unknown as { processID: number }).processID);
  interrupt.addEventListener("abort", cancel);
  const step = async <T>(work: () => Promise<T>): Promise<T> => {
    if (interrupt.aborted) throw new Interrupted("interrupted");
    const result = await work();
    if (interrupt.aborted) throw new Interrupted("interrupted");
    return result;
  };
  try {
    await step(() => client.query("begin"));
    // Waiting longer for another load of the table fails as transient (55P03): the retry policy takes over.
    await step(() => client.query(`set local lock_timeout = ${Math.round(declaration.lock_timeout_seconds * 1000)}`));
    await step(() => ensureTable(client, declaration));
    await step(() => client.query("select pg_advisory_xact_lock(hashtextextended($1, 0))", [`${SCHEMA}.${declaration.table}`]));
    await pauseIfAsked("locked", interrupt);
    const previous = await step(() => client.query(`select count(*)::bigint as n from ${table}`));
    await step(() => client.query(`delete from ${table}`));
    const columns = declaration.columns.map((column) => `"${column.name}"`).join(", ");
    const copy = client.query(copyFrom(`copy ${table} (${columns}) from stdin with (format csv)`));
    await step(() => pipeline(Readable.from(records(rows, interrupt)), copy));
    const loaded = copy.rowCount;
    await pauseIfAsked("validate", interrupt);
    if (loaded === 0 && !declaration.allow_empty) throw new LoadError(`${where}: no rows in the input; expected at least one`);
    await pauseIfAsked("commit", interrupt);
    await step(() => client.query("commit"));
    return { table: `${SCHEMA}.${declaration.table}`, rowsLoaded: loaded, previousRows: Number(previous.rows[0].n) };
  } catch (error) {
    await client.query("rollback").catch(() => undefined);
    if (interrupt.aborted) throw new Interrupted("interrupted, rolled back", { cause: error });
    throw loadError(error, declaration, rows, where);
  } finally {
    interrupt.removeEventListener("abort", cancel);
    await client.end().catch(() => undefined);
  }
}

async function* records(rows: Rows, interrupt: AbortSignal): AsyncGenerator<string> {
  const batch = 1000;
  for (let start = 0; start < rows.count; start += batch) {
    const parts: string[] = [];
    for (let index = start; index < Math.min(start + batch, rows.count); index++) parts.push(rows.record(index));
    yield parts.join("");
    if (start === 0) await pauseIfAsked("copy", interrupt);
  }
}

async function cancelBackend(config: pg.ClientConfig, pid: number): Promise<void> {
  const canceller = new pg.Client(config);
  try {
    await canceller.connect();
    await canceller.query("select pg_cancel_backend($1)", [pid]);
  } catch {
    // The load's own session ends with the process anyway, which rolls back.
  } finally {
    await canceller.end().catch(() => undefined);
  }
}

/** Create the table on first load (in the load's transaction); refuse one that no longer matches. */
async function ensureTable(client: pg.Client, declaration: Declaration): Promise<void> {
  const name = `${SCHEMA}."${declaration.table}"`;
  const exists = await client.query("select to_regclass($1) as oid", [name]);
  if (exists.rows[0].oid === null) {
    await client.query("select pg_advisory_xact_lock(hashtextextended($1, 0))", [`${SCHEMA}.${declaration.table}`]);
    const columns = declaration.columns.map((column) => `"${column.name}" ${column.type}`);
    if (declaration.primary_key.length) columns.push(`primary key (${declaration.primary_key.map((c) => `"${c}"`).join(", ")})`);
    await client.query(`create table if not exists ${name} (${columns.join(", ")})`);
  }
  const found = await client.query(
    "select attname as name, format_type(atttypid, atttypmod) as type from pg_attribute " +
      "where attrelid = $1::regclass and attnum > 0 and not attisdropped order by attnum",
    [name],
  );
  const key = await client.query(
    "select array_agg(a.attname::text order by k.ord) as key from pg_index i " +
      "cross join unnest(i.indkey) with ordinality k(attnum, ord) " +
      "join pg_attribute a on a.attrelid = i.indrelid and a.attnum = k.attnum " +
      "where i.indrelid = $1::regclass and i.indisprimary",
    [name],
  );
  const actual = found.rows.map((row) => `${row.name} ${row.type}`);
  const expected = declaration.columns.map((column) => `${column.name} ${CATALOG_TYPES[column.type] ?? column.type}`);
  const actualKey: string[] = key.rows[0].key ?? [];
  if ([...actual].sort().join() !== [...expected].sort().join() || actualKey.join() !== declaration.primary_key.join()) {
    throw new LoadError(
      `source '${declaration.name}': ${SCHEMA}.${declaration.table} exists with columns (${actual.join(", ")}) and primary key ` +
        `(${actualKey.join(", ")}), which differ from the declaration; migrate or drop the table`,
    );
  }
}

/** A database or network error as a LoadError naming the row, the column and what was expected. */
function loadError(error: unknown, declaration: Declaration, rows: Rows, where: string): unknown {
  if (error instanceof LoadError) return error;
  const failure = error as pg.DatabaseError & { code?: string };
  if (TRANSIENT_NETWORK.has(failure.code ?? "") || TRANSIENT_SQLSTATES.has(failure.code ?? "")) {
    return new LoadError(`${where}: warehouse error: ${failure.message}`, true, { cause: error });
  }
  if (!(error instanceof pg.DatabaseError)) return error;
  let place = "";
  let message = failure.message;
  const context = COPY_CONTEXT.exec(failure.where ?? "");
  if (context) {
    const [, line, column] = context;
    place = ` ${rows.describe(Number(line) - 1)}` + (column ? `, column ${column}` : "");
    const declared = declaration.columns.find((c) => c.name === column);
    if (declared && failure.code?.startsWith("22")) message = `${message}; expected ${declared.type}`;
  }
  if (failure.code === "23505") message = `duplicate primary key: ${failure.detail ?? message}`;
  if (failure.code === "23502") message = `primary key column ${failure.column} is null; ${message}`;
  return new LoadError(`${where}${place}: ${message}`, false, { cause: error });
}
