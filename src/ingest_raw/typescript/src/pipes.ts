/**
 * The external side of Dagster Pipes (protocol "0.1"), as the Python `dagster_pipes` package speaks it.
 *
 * Dagster starts the program with two environment variables, each base64 of zlib-compressed JSON:
 * DAGSTER_PIPES_CONTEXT names where the context is ({"path": file} or {"data": {...}}) and
 * DAGSTER_PIPES_MESSAGES where messages go ({"path": file}, or {"stdio": "stderr" | "stdout"}).
 * Each message is one JSON line: {"__dagster_pipes_version": "0.1", "method": ..., "params": ...}.
 * Without the variables the program is not under Dagster and `openDagsterPipes` returns null.
 */

import { appendFileSync, readFileSync } from "node:fs";
import { deflateSync, inflateSync } from "node:zlib";

export const PROTOCOL_VERSION = "0.1";
export const CONTEXT_ENV = "DAGSTER_PIPES_CONTEXT";
export const MESSAGES_ENV = "DAGSTER_PIPES_MESSAGES";

export interface PipesContextData {
  asset_keys: string[] | null;
  partition_key: string | null;
  run_id: string;
  job_name: string | null;
  retry_number: number;
  extras: Record<string, unknown>;
}

export type MetadataType =
  | "int"
  | "float"
  | "text"
  | "json"
  | "bool"
  | "null"
  | "url"
  | "path"
  | "md"
  | "timestamp"
  | "table_schema";

export interface MetadataValue {
  type: MetadataType;
  raw_value: unknown;
}

export type Metadata = Record<string, MetadataValue>;

export interface TableColumn {
  name: string;
  type: string;
  description?: string | null;
  nullable?: boolean;
}

/** Typed metadata values; Dagster turns each into the matching MetadataValue. */
export const metadata = {
  int: (value: number): MetadataValue => {
    if (!Number.isSafeInteger(value)) throw new TypeError(`int metadata needs a safe integer, got ${value}`);
    return { type: "int", raw_value: value };
  },
  float: (value: number): MetadataValue => ({ type: "float", raw_value: value }),
  text: (value: string): MetadataValue => ({ type: "text", raw_value: value }),
  json: (value: unknown): MetadataValue => ({ type: "json", raw_value: value }),
  tableSchema: (columns: TableColumn[]): MetadataValue => ({
    type: "table_schema",
    raw_value: {
      columns: columns.map((column) => ({
        name: column.name,
        type: column.type,
        description: column.description ?? null,
        constraints: { nullable: column.nullable ?? true, unique: false },
      })),
    },
  }),
};

export type Severity = "ERROR" | "WARN";
export type LogLevel = "DEBUG" | "INFO" | "WARNING" | "ERROR" | "CRITICAL";

export interface CheckResult {
  checkName: string;
  passed: boolean;
  severity?: Severity;
  metadata?: Metadata;
  assetKey?: string;
}

/** base64(zlib(JSON)), the encoding of both bootstrap variables. */
export function encodeParam(value: unknown): string {
  return deflateSync(Buffer.from(JSON.stringify(value), "utf8")).toString("base64");
}

export function decodeParam(value: string): unknown {
  return JSON.parse(inflateSync(Buffer.from(value, "base64")).toString("utf8"));
}

type Params = Record<string, unknown>;

function params(env: NodeJS.ProcessEnv, name: string): Params {
  const raw = env[name];
  if (!raw) throw new PipesError(`${name} is not set`);
  const decoded = decodeParam(raw);
  if (typeof decoded !== "object" || decoded === null) throw new PipesError(`${name} does not hold an object`);
  return decoded as Params;
}

export class PipesError extends Error {
  override name = "PipesError";
}

type Write = (line: string) => void;

function messageWriter(messages: Params): Write {
  if (typeof messages.path === "string") {
    const path = messages.path;
    return (line) => appendFileSync(path, line);
  }
  if (messages.stdio === "stderr") return (line) => process.stderr.write(line);
  if (messages.stdio === "stdout") return (line) => process.stdout.write(line);
  throw new PipesError(`unsupported message channel ${JSON.stringify(messages)}: expected "path" or "stdio"`);
}

function loadContext(context: Params): PipesContextData {
  if (typeof context.path === "string") return JSON.parse(readFileSync(context.path, "utf8"));
  if (typeof context.data === "object" && context.data !== null) return context.data as PipesContextData;
  throw new PipesError(`unsupported context source ${JSON.stringify(context)}: expected "path" or "data"`);
}

export class PipesSession {
  readonly context: PipesContextData;
  private readonly write: Write;
  private readonly materialized = new Set<string>();
  private closed = false;

  constructor(context: PipesContextData, write: Write) {
    this.context = context;
    this.write = write;
    this.send("opened", { extras: {} });
  }

  get assetKey(): string {
    const keys = this.context.asset_keys ?? [];
    if (keys.length !== 1) throw new PipesError(`expected one asset in scope, got ${JSON.stringify(keys)}`);
    return keys[0];
  }

  get partitionKey(): string | null {
    return this.context.partition_key;
  }

  extra(name: string): unknown {
    return this.context.extras?.[name];
  }

  log(message: string, level: LogLevel = "INFO"): void {
    this.send("log", { message, level });
  }

  reportAssetMaterialization(
    options: { metadata?: Metadata; dataVersion?: string; assetKey?: string } = {},
  ): void {
    const assetKey = options.assetKey ?? this.assetKey;
    if (this.materialized.has(assetKey)) throw new PipesError(`asset ${assetKey} was already materialized`);
    this.send("report_asset_materialization", {
      asset_key: assetKey,
      data_version: options.dataVersion ?? null,
      metadata: options.metadata ?? null,
    });
    this.materialized.add(assetKey);
  }

  reportAssetCheck(result: CheckResult): void {
    this.send("report_asset_check", {
      asset_key: result.assetKey ?? this.assetKey,
      check_name: result.checkName,
      passed: result.passed,
      severity: result.severity ?? "ERROR",
      metadata: result.metadata ?? null,
    });
  }

  reportCustomMessage(payload: unknown): void {
    this.send("report_custom_message", { payload });
  }

  /** Ends the session; an error becomes the exception Dagster shows for the step. Idempotent. */
  close(error?: unknown): void {
    if (this.closed) return;
    this.send("closed", error === undefined ? {} : { exception: pipesException(error) });
    this.closed = true;
  }

  private send(method: string, params: Params): void {
    if (this.closed) throw new PipesError(`cannot send ${method}: the Pipes session is closed`);
    this.write(serialize({ __dagster_pipes_version: PROTOCOL_VERSION, method, params }) + "\n");
  }
}

const FLOAT_MARK = "\u0000float:";

/**
 * JSON as Python's json module writes it for float metadata: Dagster requires a float there, and
 * JSON.stringify writes 2.0 as 2 (read back as an int) and NaN as null.
 */
export function serialize(message: unknown): string {
  const text = JSON.stringify(message, function (this: Record<string, unknown>, key, value) {
    if (key !== "raw_value" || this.type !== "float" || typeof value !== "number") return value;
    const spelled = Number.isInteger(value) ? value.toFixed(1) : Number.isNaN(value) ? "NaN" : String(value);
    return FLOAT_MARK + spelled;
  });
  return text.replace(/"\\u0000float:([^"]+)"/g, "$1");
}

interface PipesException {
  name: string | null;
  message: string;
  stack: string[];
  cause: PipesException | null;
  context: null;
}

function pipesException(error: unknown): PipesException {
  if (!(error instanceof Error)) return { name: null, message: String(error), stack: [], cause: null, context: null };
  const frames = (error.stack ?? "").split("\n").filter((line) => line.trimStart().startsWith("at "));
  return {
    name: error.name,
    message: `${error.name}: ${error.message}\n`, // as dagster_pipes writes it (traceback.format_exception_only)
    stack: frames.map((line) => line.trim() + "\n"),
    cause: error.cause === undefined ? null : pipesException(error.cause),
    context: null,
  };
}

/** The Pipes session when launched by Dagster, else null (the program then runs standalone). */
export function openDagsterPipes(env: NodeJS.ProcessEnv = process.env): PipesSession | null {
  if (!env[CONTEXT_ENV]) return null;
  return new PipesSession(loadContext(params(env, CONTEXT_ENV)), messageWriter(params(env, MESSAGES_ENV)));
}

/**
 * Runs `body` with the session (or null standalone) and closes it: an error thrown by `body` is
 * reported as the failure, then thrown on.
 */
export async function withDagsterPipes<T>(
  body: (pipes: PipesSession | null) => Promise<T>,
  env: NodeJS.ProcessEnv = process.env,
): Promise<T> {
  const pipes = openDagsterPipes(env);
  try {
    const result = await body(pipes);
    pipes?.close();
    return result;
  } catch (error) {
    pipes?.close(error);
    throw error;
  }
}
