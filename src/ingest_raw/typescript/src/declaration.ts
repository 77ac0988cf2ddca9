import { LoadError } from "./errors.js";

/**
 * A source declaration as the ingest_raw location serialises it (`Source.to_dict()` in Python): the
 * launcher hands it over in the Pipes extra "source"; standalone, the program uses the catalog's.
 */

export const DECLARATION_EXTRA = "source";
export const SCHEMA = "raw";

export interface Column {
  name: string;
  type: string;
  description: string;
}

export interface Declaration {
  name: string;
  input: string;
  columns: Column[];
  primary_key: string[];
  table: string;
  description: string;
  format: { kind: string };
  partition: Record<string, unknown> | null;
  run_resources: Record<string, unknown> | null;
  allow_empty: boolean;
  max_rejected_rows: number;
  max_row_count_change: number;
  owners: string[];
  cron_schedule: string | null;
  timeout_seconds: number;
  max_record_bytes: number;
  lock_timeout_seconds: number;
  program: { command: string[]; kind: string } | null;
}

const IDENTIFIER = /^[a-z_][a-z0-9_]{0,62}$/;

/** The handed-over declaration, checked as far as this program relies on it. */
export function parseDeclaration(value: unknown, expectedFormat: string): Declaration {
  const declaration = value as Declaration;
  const where = `declaration ${JSON.stringify(value).slice(0, 120)}`;
  if (typeof declaration !== "object" || declaration === null) throw new LoadError(`${where}: not an object`);
  const names = [declaration.name, declaration.table, ...(declaration.columns ?? []).map((column) => column.name)];
  const unsafe = names.filter((name) => typeof name !== "string" || !IDENTIFIER.test(name));
  if (unsafe.length || !declaration.columns?.length) throw new LoadError(`${where}: unsafe or missing names ${unsafe}`);
  if (declaration.format?.kind !== expectedFormat) {
    throw new LoadError(`source '${declaration.name}': format ${declaration.format?.kind}; this program reads ${expectedFormat}`);
  }
  if (declaration.partition !== null || declaration.max_rejected_rows !== 0) {
    throw new LoadError(`source '${declaration.name}': partitions and max_rejected_rows are not supported by this program`);
  }
  return declaration;
}
