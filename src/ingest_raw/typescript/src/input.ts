/**
 * Read a source's input, a path or an http(s) URL, whole: a JSON-stat dataset is one JSON document,
 * so the declared `max_record_bytes` bounds it, counted as bytes arrive (a device or a pipe has no
 * size to look at first). A path must be a regular file (a FIFO or a device could block or never
 * end); a URL is downloaded by download.ts. Every failure is a LoadError saying whether a retry could
 * help.
 */

import { closeSync, constants, fstatSync, openSync, readSync } from "node:fs";

import { LoadError } from "./errors.js";

export interface Limits {
  timeoutSeconds: number;
  deadlineSeconds: number;
  redirectHosts: string[];
  maxBytes: number;
}

export async function readInput(location: string, limits: Limits): Promise<Buffer> {
  if (!/^https?:\/\//i.test(location)) return readPath(location, limits.maxBytes);
  // HTTP, TLS and zlib are loaded only for a URL: they are a tenth of a small file's whole read.
  const { readUrl } = await import("./download.js");
  return readUrl(location, limits);
}

export const tooLarge = (location: string, maxBytes: number) =>
  new LoadError(`${location}: more than ${maxBytes} bytes (the source's max_record_bytes bounds a dataset)`);

/** A one-shot program has nothing to do meanwhile: the file is read synchronously, without a thread
 * pool's round trip per call. */
function readPath(path: string, maxBytes: number): Buffer {
  let fd;
  try {
    fd = openSync(path, constants.O_RDONLY | constants.O_NONBLOCK);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    throw new LoadError(code === "ENOENT" ? `no such file: ${path}` : `cannot read ${path}: ${code ?? error}`);
  }
  try {
    const stats = fstatSync(fd);
    if (!stats.isFile()) {
      const kind = stats.isFIFO() ? "a FIFO" : stats.isDirectory() ? "a directory" : "a device";
      throw new LoadError(`${path} is ${kind}, not a regular file; write the dataset to a file`);
    }
    if (stats.size > maxBytes) throw tooLarge(path, maxBytes);
    const content = Buffer.allocUnsafe(stats.size);
    let size = 0;
    while (size < content.length) {
      const bytesRead = readSync(fd, content, size, content.length - size, null);
      if (bytesRead === 0) break;
      size += bytesRead;
    }
    return content.subarray(0, size);
  } catch (error) {
    if (error instanceof LoadError) throw error;
    throw new LoadError(`cannot read ${path}: ${(error as NodeJS.ErrnoException).code ?? error}`);
  } finally {
    closeSync(fd);
  }
}
