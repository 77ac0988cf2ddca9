import { LoadError } from "./errors.js";

/**
 * What a reader program needs of its source's declaration. The loader (`python -m ingest_raw.sources
 * NAME`) starts the reader with the whole declaration (`Source.to_dict()`, the one validated in
 * Python) as JSON in INGEST_SOURCE; nothing here repeats a declaration.
 */

export const SOURCE_ENV = "INGEST_SOURCE";

export interface Declaration {
  name: string;
  input: string;
  columns: { name: string; type: string }[];
  timeout_seconds: number;
  deadline_seconds: number;
  redirect_hosts: string[];
  max_record_bytes: number;
}

export function declarationFromEnv(env: NodeJS.ProcessEnv = process.env): Declaration {
  const raw = env[SOURCE_ENV];
  if (!raw) {
    throw new LoadError(
      `${SOURCE_ENV} is not set: a reader program is started by the loader, run python -m ingest_raw.sources <source>`,
    );
  }
  return JSON.parse(raw) as Declaration;
}
