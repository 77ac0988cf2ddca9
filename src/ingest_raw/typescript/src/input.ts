/**
 * Read a source's input, a path or an http(s) URL, whole: a JSON-stat dataset is one JSON document,
 * so the declared `max_record_bytes` bounds it, counted as bytes arrive (a device or a pipe has no
 * size to look at first). A path must be a regular file (a FIFO or a device could block or never
 * end); a download has a per-read timeout and a total deadline, and follows redirects only to http(s)
 * on its own host or a declared one. Every failure is a LoadError saying whether a retry could help.
 */

import { constants } from "node:fs";
import { open } from "node:fs/promises";
import { type IncomingMessage, request as httpRequest } from "node:http";
import { request as httpsRequest } from "node:https";
import { pipeline, type Readable } from "node:stream";
import { createBrotliDecompress, createGunzip, createInflate } from "node:zlib";

import { LoadError } from "./errors.js";

const TRANSIENT_HTTP = new Set([408, 425, 429, 500, 502, 503, 504]);
const REDIRECTS = new Set([301, 302, 303, 307, 308]);
const MAX_REDIRECTS = 10;
/** The codes of zlib's and brotli's errors: a body that does not decode as its Content-Encoding says. */
const CORRUPT_ENCODING = /^(Z_|ERR__ERROR_|ERR_BROTLI)/;

export interface Limits {
  timeoutSeconds: number;
  deadlineSeconds: number;
  redirectHosts: string[];
  maxBytes: number;
}

export async function readInput(location: string, limits: Limits): Promise<Buffer> {
  return /^https?:\/\//i.test(location) ? readUrl(location, limits) : readPath(location, limits.maxBytes);
}

const tooLarge = (location: string, maxBytes: number) =>
  new LoadError(`${location}: more than ${maxBytes} bytes (the source's max_record_bytes bounds a dataset)`);

async function readPath(path: string, maxBytes: number): Promise<Buffer> {
  let handle;
  try {
    handle = await open(path, constants.O_RDONLY | constants.O_NONBLOCK);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    throw new LoadError(code === "ENOENT" ? `no such file: ${path}` : `cannot read ${path}: ${code ?? error}`);
  }
  try {
    const stats = await handle.stat();
    if (!stats.isFile()) {
      const kind = stats.isFIFO() ? "a FIFO" : stats.isDirectory() ? "a directory" : "a device";
      throw new LoadError(`${path} is ${kind}, not a regular file; write the dataset to a file`);
    }
    if (stats.size > maxBytes) throw tooLarge(path, maxBytes);
    const content = Buffer.allocUnsafe(stats.size);
    let size = 0;
    while (size < content.length) {
      const { bytesRead } = await handle.read(content, size, content.length - size);
      if (bytesRead === 0) break;
      size += bytesRead;
    }
    return content.subarray(0, size);
  } catch (error) {
    if (error instanceof LoadError) throw error;
    throw new LoadError(`cannot read ${path}: ${(error as NodeJS.ErrnoException).code ?? error}`);
  } finally {
    await handle.close();
  }
}

/**
 * GET `url`: fails as transient after `timeoutSeconds` without a byte or `deadlineSeconds` in all, and
 * when the body ends before its end (node:http knows a chunked body cut short even when the server
 * closes the connection, which fetch takes for a complete body).
 */
async function readUrl(url: string, limits: Limits): Promise<Buffer> {
  const { timeoutSeconds, deadlineSeconds, maxBytes } = limits;
  const stalled = new AbortController();
  let timer = setTimeout(() => stalled.abort(), timeoutSeconds * 1000);
  const rearm = () => {
    clearTimeout(timer);
    timer = setTimeout(() => stalled.abort(), timeoutSeconds * 1000);
  };
  const late = AbortSignal.timeout(deadlineSeconds * 1000);
  const signal = AbortSignal.any([stalled.signal, late]);
  let encoding = "";
  const fail = (error: unknown): never => {
    if (error instanceof LoadError) throw error;
    if (late.aborted) throw new LoadError(`${url}: download not finished within ${deadlineSeconds} s (the source's deadline_seconds)`, true);
    if (stalled.signal.aborted) throw new LoadError(`${url}: timed out (${timeoutSeconds} s without data)`, true);
    const code = (error as NodeJS.ErrnoException).code;
    if (code && CORRUPT_ENCODING.test(code)) {
      // The bytes arrived whole (a cut connection fails first) but do not decode: a retry gets the same.
      throw new LoadError(`${url}: the body is not valid ${encoding} (its Content-Encoding): ${code}`, false, { cause: error });
    }
    throw new LoadError(`${url}: connection lost: ${code ?? (error as Error)?.message ?? error}`, true, { cause: error });
  };
  let response: IncomingMessage | undefined;
  try {
    response = await follow(url, limits.redirectHosts, signal);
    const status = response.statusCode ?? 0;
    if (status < 200 || status > 299) {
      throw new LoadError(`${url}: HTTP ${status} ${response.statusMessage ?? ""}`.trimEnd(), TRANSIENT_HTTP.has(status));
    }
    const declared = Number(response.headers["content-length"] ?? NaN);
    if (declared > maxBytes) throw tooLarge(url, maxBytes);
    encoding = response.headers["content-encoding"] ?? "";
    const chunks: Buffer[] = [];
    let size = 0;
    for await (const chunk of decoded(response, encoding, url)) {
      rearm();
      size += chunk.length;
      if (size > maxBytes) throw tooLarge(url, maxBytes);
      chunks.push(chunk as Buffer);
    }
    if (!response.complete) throw new LoadError(`${url}: connection lost before the end of the body`, true);
    return Buffer.concat(chunks);
  } catch (error) {
    return fail(error);
  } finally {
    clearTimeout(timer);
    response?.destroy();
  }
}

/** The body decoded as its Content-Encoding says ("gzip", "br", "deflate", in the order applied). */
function decoded(body: IncomingMessage, encoding: string, url: string): Readable {
  const decoders = encoding
    .split(",")
    .map((name) => name.trim().toLowerCase())
    .filter((name) => name && name !== "identity")
    .reverse()
    .map((name) => {
      if (name === "gzip" || name === "x-gzip") return createGunzip();
      if (name === "deflate") return createInflate();
      if (name === "br") return createBrotliDecompress();
      throw new LoadError(`${url}: the body's Content-Encoding ${JSON.stringify(name.slice(0, 40))} is not gzip, deflate or br`);
    });
  if (!decoders.length) return body;
  return pipeline([body, ...decoders], () => {}) as unknown as Readable;
}

/** One GET: the response once its headers arrive. */
function get(url: URL, signal: AbortSignal): Promise<IncomingMessage> {
  return new Promise((resolve, reject) => {
    const send = url.protocol === "https:" ? httpsRequest : httpRequest;
    const request = send(url, { signal, agent: false, headers: { "User-Agent": "ingest-raw", "Accept-Encoding": "gzip, deflate, br" } }, resolve);
    request.on("error", reject);
    request.end();
  });
}

/** `text` (relative to `base`) as a URL to request; a LoadError (permanent) saying why not. */
function requestable(text: string, base: string | undefined, what: string): URL {
  let target: URL;
  try {
    target = new URL(text, base);
  } catch {
    throw new LoadError(`${what} ${JSON.stringify(text.slice(0, 200))}, which is not a valid URL`);
  }
  if (target.username || target.password) {
    throw new LoadError(`${what} a URL with a user name or password in it; those are not sent`);
  }
  return target;
}

async function follow(url: string, allowedHosts: string[], signal: AbortSignal): Promise<IncomingMessage> {
  // Shown without any user name or password: error lines end up in logs and alerts.
  let current = requestable(url, undefined, `${url.replace(/\/\/[^/@]*@/, "//***@")}: the input is`);
  const hosts = new Set([current.hostname, ...allowedHosts]);
  for (let hop = 0; hop <= MAX_REDIRECTS; hop++) {
    const response = await get(current, signal);
    const status = response.statusCode ?? 0;
    if (!REDIRECTS.has(status)) return response;
    const location = response.headers.location;
    response.destroy();
    if (!location) throw new LoadError(`${url}: HTTP ${status} redirects without a Location header`);
    const target = requestable(location, current.href, `${url}: HTTP ${status} redirects to`);
    if (target.protocol !== "http:" && target.protocol !== "https:") {
      throw new LoadError(`${url}: HTTP ${status} redirects to ${JSON.stringify(location.slice(0, 200))}; only http(s) redirects are followed`);
    }
    if (!hosts.has(target.hostname)) {
      throw new LoadError(
        `${url}: HTTP ${status} redirects to host ${target.hostname}; redirects are followed to ${[...hosts].join(", ")} only (the source's redirect_hosts)`,
      );
    }
    current = target;
  }
  throw new LoadError(`${url}: more than ${MAX_REDIRECTS} redirects`);
}
