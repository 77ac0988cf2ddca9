/**
 * Download a source's input whole (only a URL input loads this module, and with it HTTP, TLS and zlib):
 * a per-read timeout and a total deadline, redirects only to http(s) on the input's own host or a
 * declared one, the body decoded as its Content-Encoding says and bounded by `max_record_bytes` as
 * bytes arrive. Every failure is a LoadError saying whether a retry could help.
 */

import { type IncomingMessage, request as httpRequest } from "node:http";
import { request as httpsRequest } from "node:https";
import { pipeline, type Readable } from "node:stream";
import { createBrotliDecompress, createGunzip, createInflate } from "node:zlib";

import { LoadError } from "./errors.js";
import { type Limits, tooLarge } from "./input.js";

const TRANSIENT_HTTP = new Set([408, 425, 429, 500, 502, 503, 504]);
const REDIRECTS = new Set([301, 302, 303, 307, 308]);
const MAX_REDIRECTS = 10;
/** The codes of zlib's and brotli's errors: a body that does not decode as its Content-Encoding says. */
const CORRUPT_ENCODING = /^(Z_|ERR__ERROR_|ERR_BROTLI)/;
/**
 * A certificate that does not verify (OpenSSL's verify results, as Node names them) or a handshake the
 * server cannot speak (EPROTO: https to a plain http port, no common protocol): the same on every
 * retry. A handshake cut short is ECONNRESET, and may pass on a retry.
 */
const TLS_REFUSED =
  /^(EPROTO$|ERR_SSL_|ERR_TLS_CERT_|UNABLE_TO_|CERT_|CRL_|DEPTH_ZERO_SELF_SIGNED_CERT$|SELF_SIGNED_CERT_IN_CHAIN$|ERROR_IN_C|INVALID_CA$|INVALID_PURPOSE$|PATH_LENGTH_EXCEEDED$|HOSTNAME_MISMATCH$)/;

/**
 * GET `url`: fails as transient after `timeoutSeconds` without a byte or `deadlineSeconds` in all, and
 * when the body ends before its end (node:http knows a chunked body cut short even when the server
 * closes the connection, which fetch takes for a complete body).
 */
export async function readUrl(url: string, limits: Limits): Promise<Buffer> {
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
    if (code && TLS_REFUSED.test(code)) {
      throw new LoadError(`${url}: TLS refused: ${code}: ${(error as Error).message}`, false, { cause: error });
    }
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
