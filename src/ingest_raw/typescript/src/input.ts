/**
 * Read a source's input, a path or an http(s) URL, whole: a JSON-stat dataset is one JSON document,
 * so the declared `max_record_bytes` bounds it (statistics APIs cap a response far below the default
 * 64 MiB); anything larger is refused, so memory stays bounded. Every failure is a LoadError saying whether a retry could help.
 */

import { createHash } from "node:crypto";
import { readFile, stat } from "node:fs/promises";

import { Interrupted, LoadError } from "./errors.js";

const TRANSIENT_HTTP = new Set([408, 425, 429, 500, 502, 503, 504]);

export interface Input {
  location: string;
  content: Buffer;
  bytesRead: number;
  sha256: string;
}

export async function readInput(
  location: string,
  timeoutSeconds: number,
  interrupt: AbortSignal,
  maxBytes: number,
): Promise<Input> {
  const content = /^https?:\/\//.test(location)
    ? await readUrl(location, timeoutSeconds, interrupt, maxBytes)
    : await readPath(location, maxBytes);
  return { location, content, bytesRead: content.length, sha256: createHash("sha256").update(content).digest("hex") };
}

async function readPath(path: string, maxBytes: number): Promise<Buffer> {
  try {
    const size = (await stat(path)).size;
    if (size > maxBytes) throw new LoadError(`${path} has ${size} bytes, more than the ${maxBytes} a dataset may have`);
    return await readFile(path);
  } catch (error) {
    if (error instanceof LoadError) throw error;
    const code = (error as NodeJS.ErrnoException).code;
    throw new LoadError(code === "ENOENT" ? `no such file: ${path}` : `cannot read ${path}: ${error}`);
  }
}

/** GET `url`; the read fails as transient after `timeoutSeconds` without a byte. */
async function readUrl(url: string, timeoutSeconds: number, interrupt: AbortSignal, maxBytes: number): Promise<Buffer> {
  const stalled = new AbortController();
  let timer = setTimeout(() => stalled.abort(), timeoutSeconds * 1000);
  const rearm = () => {
    clearTimeout(timer);
    timer = setTimeout(() => stalled.abort(), timeoutSeconds * 1000);
  };
  const signal = AbortSignal.any([stalled.signal, interrupt]);
  const fail = (error: unknown): never => {
    if (interrupt.aborted) throw new Interrupted("interrupted while reading the input");
    if (stalled.signal.aborted) throw new LoadError(`timed out reading ${url} (${timeoutSeconds} s without data)`, true);
    if (error instanceof LoadError) throw error;
    const cause = (error as { cause?: { code?: string; message?: string } }).cause;
    throw new LoadError(`connection lost while reading ${url}: ${cause?.code ?? cause?.message ?? error}`, true, {
      cause: error,
    });
  };
  try {
    const response = await fetch(url, { signal, headers: { "User-Agent": "ingest-raw" } });
    if (!response.ok) {
      throw new LoadError(`HTTP ${response.status} ${response.statusText} for ${url}`, TRANSIENT_HTTP.has(response.status));
    }
    const declared = Number(response.headers.get("content-length") ?? NaN);
    if (declared > maxBytes) throw new LoadError(`${url} has ${declared} bytes, more than the ${maxBytes} a dataset may have`);
    const chunks: Buffer[] = [];
    let size = 0;
    for await (const chunk of response.body ?? []) {
      rearm();
      size += chunk.length;
      if (size > maxBytes) throw new LoadError(`${url} sent more than the ${maxBytes} bytes a dataset may have`);
      chunks.push(Buffer.from(chunk));
    }
    if (!Number.isNaN(declared) && size !== declared && !response.headers.get("content-encoding")) {
      throw new LoadError(`connection lost while reading ${url}: ${size} of ${declared} bytes`, true);
    }
    return Buffer.concat(chunks);
  } catch (error) {
    return fail(error);
  } finally {
    clearTimeout(timer);
  }
}
