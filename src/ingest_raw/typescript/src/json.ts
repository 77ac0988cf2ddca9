/**
 * A strict JSON parser over bytes, for inputs a source reads whole: stricter than JSON.parse where a
 * load must not guess. Invalid UTF-8, a repeated key in an object, a number beyond the range of a
 * double (1e400) and nesting deeper than MAX_DEPTH are refused, each with its line and column. An
 * array of numbers (and nulls) is kept as the offsets of its elements in the input (4 bytes each,
 * counted before it is read, so never grown), read again when asked: whatever the input, the parser
 * holds at most the input and 4 bytes for every 2 bytes of it.
 */

import { isUtf8 } from "node:buffer";

import { LoadError } from "./errors.js";

export const MAX_DEPTH = 64;

export type Json = null | boolean | number | string | Json[] | NumberArray | { [key: string]: Json };

const NULL_OFFSET = 0xffffffff;

/** An array whose elements are all numbers or null, read from the input when asked. */
export class NumberArray {
  constructor(
    private readonly bytes: Buffer,
    private readonly offsets: Uint32Array,
  ) {}

  get length(): number {
    return this.offsets.length;
  }

  get(index: number): number | null {
    const start = this.offsets[index];
    if (start === NULL_OFFSET) return null;
    let end = start;
    while (end < this.bytes.length && NUMBER_BYTE[this.bytes[end]]) end++;
    return Number(this.bytes.toString("latin1", start, end));
  }
}

const NUMBER_BYTE = new Uint8Array(256);
for (const c of "-+.eE0123456789") NUMBER_BYTE[c.charCodeAt(0)] = 1;

/** "line 3, column 14" of byte `offset` (columns count characters, from 1). */
export function place(bytes: Buffer, offset: number): string {
  let line = 1;
  let start = 0;
  for (let at = bytes.indexOf(10); at !== -1 && at < offset; at = bytes.indexOf(10, at + 1)) {
    line++;
    start = at + 1;
  }
  let column = 1;
  for (let at = start; at < offset; at++) if ((bytes[at] & 0xc0) !== 0x80) column++;
  return `line ${line}, column ${column}`;
}

/** The offset of the first byte that is not part of valid UTF-8, or -1. */
function invalidUtf8(bytes: Buffer): number {
  const n = bytes.length;
  let at = 0;
  while (at < n) {
    const b = bytes[at];
    if (b < 0x80) {
      at++;
      continue;
    }
    let need: number;
    let min: number;
    if (b >= 0xc2 && b <= 0xdf) [need, min] = [1, 0x80];
    else if (b >= 0xe0 && b <= 0xef) [need, min] = [2, 0x800];
    else if (b >= 0xf0 && b <= 0xf4) [need, min] = [3, 0x10000];
    else return at;
    let code = b & (0x3f >> need);
    for (let k = 1; k <= need; k++) {
      const c = bytes[at + k];
      if (c === undefined || (c & 0xc0) !== 0x80) return at;
      code = (code << 6) | (c & 0x3f);
    }
    if (code < min || code > 0x10ffff || (code >= 0xd800 && code <= 0xdfff)) return at;
    at += need + 1;
  }
  return -1;
}

const WS = new Uint8Array(256);
for (const c of [0x20, 0x09, 0x0a, 0x0d]) WS[c] = 1;
const LONE_SURROGATE = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/;

export function parseJson(bytes: Buffer, where: string): Json {
  const bad = isUtf8(bytes) ? -1 : invalidUtf8(bytes); // the native check first, the place only if needed
  if (bad !== -1) {
    throw new LoadError(`${where} ${place(bytes, bad)}: not valid UTF-8 (byte 0x${bytes[bad].toString(16).padStart(2, "0")})`);
  }
  let pos = bytes[0] === 0xef && bytes[1] === 0xbb && bytes[2] === 0xbf ? 3 : 0;
  const fail = (message: string, at = pos): never => {
    throw new LoadError(`${where} ${place(bytes, at)}: ${message}`);
  };
  const found = () => (pos >= bytes.length ? "the end of the input" : JSON.stringify(String.fromCharCode(bytes[pos])));
  const skip = () => {
    while (pos < bytes.length && WS[bytes[pos]]) pos++;
  };
  const expect = (char: number, what: string) => {
    skip();
    if (bytes[pos] !== char) fail(`invalid JSON: expected ${what}, found ${found()}`);
    pos++;
  };

  const string = (): string => {
    const start = ++pos;
    let plain = true;
    for (;;) {
      const c = bytes[pos];
      if (c === undefined) fail("invalid JSON: string never closed", start - 1);
      if (c === 0x22) break;
      if (c < 0x20) fail("invalid JSON: control character in a string");
      if (c === 0x5c) {
        plain = false;
        pos++;
      }
      pos++;
    }
    const raw = bytes.toString("utf8", start, pos);
    pos++;
    if (plain) return raw;
    let text: string;
    try {
      text = JSON.parse(`"${raw}"`) as string;
    } catch {
      return fail("invalid JSON: bad escape in a string", start - 1);
    }
    // "\ud800" alone is half of a UTF-16 pair, no character: written out it would become U+FFFD.
    if (LONE_SURROGATE.test(text)) fail("a \\u escape in this string is a lone surrogate (half of a UTF-16 pair), not a character", start - 1);
    return text;
  };

  /** Skips a number, checked against JSON's grammar and the range of a double. Its value (a string
   * made and read) only when asked for or when it could be out of range: an array of numbers is read
   * again when its elements are asked for (NumberArray), millions of strings made for nothing. */
  const digits = (): number => {
    const first = pos;
    while (bytes[pos] >= 0x30 && bytes[pos] <= 0x39) pos++;
    return pos - first;
  };
  const number = (wanted = true): number => {
    const start = pos;
    if (bytes[pos] === 0x2d) pos++;
    const whole = bytes[pos] === 0x30 ? (pos++, 1) : digits();
    let valid = whole > 0;
    if (valid && bytes[pos] === 0x2e) {
      pos++;
      valid = digits() > 0;
    }
    let exponent = false;
    if (valid && (bytes[pos] === 0x65 || bytes[pos] === 0x45)) {
      exponent = true;
      pos++;
      if (bytes[pos] === 0x2b || bytes[pos] === 0x2d) pos++;
      valid = digits() > 0;
    }
    const end = pos;
    while (pos < bytes.length && NUMBER_BYTE[bytes[pos]]) pos++;
    if (!valid || pos !== end) {
      fail(`invalid JSON: bad number ${JSON.stringify(bytes.toString("latin1", start, pos).slice(0, 40))}`, start);
    }
    // Without an exponent, fewer than 309 digits before the point are always below 1.8e308.
    if (!wanted && !exponent && whole < 309) return 0;
    const text = bytes.toString("latin1", start, pos);
    const value = Number(text);
    if (!Number.isFinite(value)) fail(`number ${text.slice(0, 40)} is out of range (beyond ±1.8e308)`, start);
    return value;
  };

  const literal = (word: string, value: Json): Json => {
    if (bytes.toString("latin1", pos, pos + word.length) !== word) fail(`invalid JSON: unexpected ${found()}`);
    pos += word.length;
    return value;
  };

  const value = (depth: number): Json => {
    if (depth > MAX_DEPTH) fail(`nesting deeper than ${MAX_DEPTH} levels`);
    skip();
    const c = bytes[pos];
    if (c === 0x7b) return object(depth);
    if (c === 0x5b) return array(depth);
    if (c === 0x22) return string();
    if (c === 0x74) return literal("true", true);
    if (c === 0x66) return literal("false", false);
    if (c === 0x6e) return literal("null", null);
    if (c === 0x2d || (c >= 0x30 && c <= 0x39)) return number();
    return fail(`invalid JSON: unexpected ${found()}`);
  };

  const object = (depth: number): Json => {
    const result: { [key: string]: Json } = Object.create(null);
    const keys = new Set<string>();
    pos++;
    skip();
    if (bytes[pos] === 0x7d) {
      pos++;
      return result;
    }
    for (;;) {
      skip();
      if (bytes[pos] !== 0x22) fail(`invalid JSON: expected a key in double quotes, found ${found()}`);
      const at = pos;
      const key = string();
      if (keys.has(key)) fail(`key ${JSON.stringify(key.slice(0, 80))} appears twice in the same object`, at);
      keys.add(key);
      expect(0x3a, "':'");
      result[key] = value(depth + 1);
      skip();
      if (bytes[pos] === 0x2c) {
        pos++;
        continue;
      }
      expect(0x7d, "',' or '}'");
      return result;
    }
  };

  /** The number of elements if the array at `pos` holds only numbers and nulls, else -1. */
  const numbersAhead = (): number => {
    let count = 1;
    for (let at = pos + 1; at < bytes.length; at++) {
      const c = bytes[at];
      if (c === 0x2c) count++;
      else if (c === 0x5d) return count;
      else if (c === 0x5b || c === 0x7b || c === 0x22) return -1;
    }
    return -1;
  };

  const array = (depth: number): Json => {
    const count = bytes.length < NULL_OFFSET ? numbersAhead() : -1;
    pos++;
    skip();
    if (bytes[pos] === 0x5d) {
      pos++;
      return [];
    }
    if (count > 0) {
      const offsets = new Uint32Array(count);
      for (let index = 0; ; index++) {
        skip();
        if (index >= count) fail("invalid JSON: expected ']'");
        const c = bytes[pos];
        if (c === 0x6e) {
          offsets[index] = NULL_OFFSET;
          literal("null", null);
        } else if (c === 0x2d || (c >= 0x30 && c <= 0x39)) {
          offsets[index] = pos;
          number(false);
        } else {
          value(depth + 1); // fails on what is no JSON, with its own message
          fail("invalid JSON: expected a number or null");
        }
        skip();
        if (bytes[pos] === 0x2c) {
          pos++;
          continue;
        }
        expect(0x5d, "',' or ']'");
        if (index + 1 !== count) fail("invalid JSON: expected a value");
        return new NumberArray(bytes, offsets);
      }
    }
    const items: Json[] = [];
    for (;;) {
      items.push(value(depth + 1));
      skip();
      if (bytes[pos] === 0x2c) {
        pos++;
        continue;
      }
      expect(0x5d, "',' or ']'");
      return items;
    }
  };

  const result = value(1);
  skip();
  if (pos < bytes.length) fail(`invalid JSON: unexpected ${found()} after the document`);
  return result;
}
