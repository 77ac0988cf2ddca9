/**
 * JSON-stat 2.0 datasets (https://json-stat.org/full/), the format statistics offices serve: one
 * row per cell. Cells are in row-major order over `id` (the last dimension varies fastest).
 *
 * Columns of a source: the lowercased id of every dimension (the category code), optionally
 * `<dimension>_label` (the category label), `value` and optionally `status`. A dense `value` (an
 * array) gives a row per cell; a sparse one (an object of cell index to value) gives a row per cell
 * it lists: a cell it leaves out is missing, not a row of nulls, so the rows never outnumber the input.
 */

import { LoadError } from "./errors.js";
import { type Json, NumberArray, parseJson } from "./json.js";

export interface Dimension {
  id: string;
  column: string;
  codes: string[];
  labels: Record<string, string>;
}

export interface Dataset {
  label: string;
  updated: string;
  dimensions: Dimension[];
  /** The cells that have a row, in order, and how many they are. */
  cells(): Iterable<number>;
  rows: number;
  value(index: number): number | null;
  status(index: number): string | null;
  /** The length of the longest status. */
  longestStatus: number;
}

type JsonObject = { [key: string]: Json };

const isObject = (value: unknown): value is JsonObject =>
  typeof value === "object" && value !== null && !Array.isArray(value) && !(value instanceof NumberArray);

const items = (value: Json): Json[] | null =>
  value instanceof NumberArray ? Array.from({ length: value.length }, (_, index) => value.get(index)) : Array.isArray(value) ? value : null;

export function parseJsonStat(content: Buffer, where: string): Dataset {
  const fail = (message: string): never => {
    throw new LoadError(`${where}: ${message}`);
  };
  const document = parseJson(content, where);
  if (!isObject(document)) return fail("expected a JSON-stat 2.0 dataset object");
  if (document.version !== "2.0" || document.class !== "dataset") {
    return fail(`expected "version": "2.0" and "class": "dataset", got ${show(document.version)} and ${show(document.class)}`);
  }
  const ids = items(document.id);
  const sizes = items(document.size);
  if (!ids || !sizes || ids.length !== sizes.length || ids.length === 0) {
    return fail('"id" and "size" must be arrays of the same, non-zero length');
  }
  if (!isObject(document.dimension)) return fail('"dimension" must be an object');
  const dimensionsJson = document.dimension;
  const dimensions = ids.map((id, position): Dimension => {
    const size = sizes[position];
    if (typeof id !== "string" || typeof size !== "number" || !Number.isSafeInteger(size) || size < 0) {
      return fail(`id[${position}] / size[${position}] are ${show(id)} / ${show(size)}; expected a name and a count`);
    }
    const dimension = dimensionsJson[id];
    const category = isObject(dimension) ? dimension.category : undefined;
    if (!isObject(category)) return fail(`dimension ${id}: no "category" object`);
    const problem = (message: string) => fail(`dimension ${id}: ${message}`);
    const codes = categoryCodes(category, size, problem);
    const labels: Record<string, string> = Object.create(null);
    if (category.label !== undefined) {
      if (!isObject(category.label)) problem('"category"."label" must be an object of code to label');
      for (const [code, label] of Object.entries(category.label as JsonObject)) {
        if (typeof label !== "string") problem(`the label of category ${show(code)} is ${show(label)}; expected a string`);
        labels[code] = label as string;
      }
    }
    return { id, column: id.toLowerCase(), codes, labels };
  });
  let cells = 1;
  for (const dimension of dimensions) cells *= dimension.codes.length;
  if (!Number.isSafeInteger(cells)) fail(`the dimension sizes multiply to ${cells} cells, more than can be counted`);
  const values = cellValues(document.value, cells, (message) => fail(`"value" ${message}`));
  const statuses = cellStatus(document.status, cells, (message) => fail(`"status" ${message}`));
  const text = (key: string) => (typeof document[key] === "string" ? (document[key] as string) : "");
  return { label: text("label"), updated: text("updated"), dimensions, ...values, ...statuses };
}

const show = (value: unknown): string => {
  const text = value instanceof NumberArray ? "[numbers]" : JSON.stringify(value) ?? String(value);
  return text.length > 80 ? `${text.slice(0, 80)}…` : text;
};

function categoryCodes(category: JsonObject, size: number, fail: (message: string) => never): string[] {
  const { index, label } = category;
  let codes: string[];
  const list = items(index);
  if (list) {
    codes = list.map((code, position) => (typeof code === "string" ? code : fail(`category index[${position}] is ${show(code)}; expected a string`)));
  } else if (isObject(index)) {
    codes = new Array(Math.min(size, Object.keys(index).length));
    for (const [code, position] of Object.entries(index)) {
      if (typeof position !== "number" || !Number.isSafeInteger(position) || position < 0 || position >= codes.length || codes[position] !== undefined) {
        return fail(`category ${show(code)} has position ${show(position)}; expected a distinct integer below ${size}`);
      }
      codes[position] = code;
    }
  } else if (isObject(label) && Object.keys(label).length === 1) {
    codes = Object.keys(label);
  } else {
    return fail('no category "index" (allowed only for a single labelled category)');
  }
  if (codes.length !== size) return fail(`${codes.length} categories but size ${size}`);
  if (new Set(codes).size !== codes.length) return fail("repeated category codes");
  return codes;
}

function cellValues(
  value: Json | undefined,
  cells: number,
  fail: (message: string) => never,
): Pick<Dataset, "cells" | "rows" | "value"> {
  if (value instanceof NumberArray) {
    if (value.length !== cells) fail(`has ${value.length} cells; the dimension sizes multiply to ${cells}`);
    return { cells: () => range(cells), rows: cells, value: (index) => value.get(index) };
  }
  if (Array.isArray(value)) {
    const index = value.findIndex((item) => item !== null && typeof item !== "number");
    if (index >= 0) fail(`[${index}] is ${show(value[index])}; expected a number or null`);
    if (value.length !== cells) fail(`has ${value.length} cells; the dimension sizes multiply to ${cells}`);
    return { cells: () => range(cells), rows: cells, value: () => null };
  }
  if (isObject(value)) {
    const sparse = new Map<number, number | null>();
    for (const [key, item] of Object.entries(value)) {
      if (!/^(0|[1-9][0-9]*)$/.test(key) || Number(key) >= cells) fail(`key ${show(key)} is not a cell index below ${cells}`);
      if (item !== null && typeof item !== "number") fail(`[${key}] is ${show(item)}; expected a number or null`);
      sparse.set(Number(key), item as number | null);
    }
    const listed = [...sparse.keys()].sort((a, b) => a - b);
    return { cells: () => listed, rows: listed.length, value: (index) => sparse.get(index) ?? null };
  }
  return fail("must be an array or an object of cell index to value");
}

function* range(count: number): Generator<number> {
  for (let index = 0; index < count; index++) yield index;
}

function cellStatus(
  status: Json | undefined,
  cells: number,
  fail: (message: string) => never,
): Pick<Dataset, "status" | "longestStatus"> {
  let longestStatus = 0;
  const text = (item: Json, at: number | string): string | null => {
    if (item !== null && typeof item !== "string") return fail(`[${at}] is ${show(item)}; expected a string or null`);
    longestStatus = Math.max(longestStatus, item?.length ?? 0);
    return item;
  };
  if (status === undefined || status === null) return { status: () => null, longestStatus };
  if (typeof status === "string") return { status: () => status, longestStatus: status.length };
  const list = items(status);
  if (list) {
    list.forEach(text);
    if (list.length === 1) return { status: () => list[0] as string | null, longestStatus };
    if (list.length !== cells) fail(`has ${list.length} entries; expected 1 or ${cells}`);
    return { status: (index) => list[index] as string | null, longestStatus };
  }
  if (isObject(status)) {
    for (const [key, item] of Object.entries(status)) {
      if (!/^(0|[1-9][0-9]*)$/.test(key) || Number(key) >= cells) fail(`key ${show(key)} is not a cell index below ${cells}`);
      text(item, key);
    }
    return { status: (index) => (status[String(index)] as string | undefined) ?? null, longestStatus };
  }
  return fail("must be a string, an array or an object");
}

/** "region=R01, month=2016M01, contents=cpi": where cell `index` sits. */
/** Codes longer than this are shown cut, with their length: a place in an error line, not the data. */
const SHOWN_CODE_CHARACTERS = 80;

export function describeCell(dataset: Dataset, index: number): string {
  const parts: string[] = [];
  let rest = index;
  for (let position = dataset.dimensions.length - 1; position >= 0; position--) {
    const dimension = dataset.dimensions[position];
    const code = dimension.codes[rest % dimension.codes.length];
    const shown = code.length > SHOWN_CODE_CHARACTERS ? `${code.slice(0, SHOWN_CODE_CHARACTERS)}... (${code.length} characters)` : code;
    parts.unshift(`${dimension.id}=${shown}`);
    rest = Math.floor(rest / dimension.codes.length);
  }
  return parts.join(", ");
}

/** A CSV record: its text, or, when a field is long, its pieces with the long fields as bytes. */
export type CsvRecord = string | (string | Buffer)[];

/** Fields at least this long are encoded to bytes once and written as they are, never copied into a
 * row's text: a label of megabytes repeated over rows would otherwise leave a copy per row for the
 * garbage collector, which V8 lets pile up far past the dataset's own size. */
const LONG_FIELD = 1 << 16;

/**
 * CSV records (one per cell, in the declared column order): fails naming every declared column the
 * dataset cannot fill and every dimension without a column.
 */
export function csvRecords(
  dataset: Dataset,
  columns: string[],
  where: string,
): ((index: number) => CsvRecord) & { bytes(limit: number): number } {
  // Every column name means one thing: "MONTH" and "month", a dimension "value" or "region_label"
  // beside "region" would each lose a dimension silently, to whichever the columns matched first.
  const meanings = new Map<string, string>([
    ["value", "the values"],
    ["status", "the statuses"],
  ]);
  for (const { id, column } of dataset.dimensions) {
    for (const [name, meaning] of [
      [column, `dimension ${id}`],
      [`${column}_label`, `the labels of dimension ${id}`],
    ]) {
      const taken = meanings.get(name);
      if (taken) throw new LoadError(`${where}: column ${name} would hold both ${taken} and ${meaning}`);
      meanings.set(name, meaning);
    }
  }
  // Each field as written, the categories' codes and labels encoded once rather than once per row.
  const fields: ((coordinates: number[], index: number) => string | Buffer)[] = [];
  const lengths: ((coordinates: number[], index: number) => number)[] = []; // at most, of each field
  const longest: number[] = []; // of each field in any row
  const unknown: string[] = [];
  for (const column of columns) {
    const dimension = dataset.dimensions.findIndex((d) => d.column === column || `${d.column}_label` === column);
    if (column === "value") {
      fields.push((_, index) => csvField(number(dataset.value(index))));
      lengths.push(() => LONGEST_NUMBER);
      longest.push(LONGEST_NUMBER);
    } else if (column === "status") {
      let last: [string | null, string | Buffer] = [null, ""];
      const field = (_: number[], index: number) => {
        const status = dataset.status(index);
        if (status !== last[0]) last = [status, long(csvField(status))];
        return last[1];
      };
      fields.push(field);
      lengths.push((coordinates, index) => field(coordinates, index).length);
      // Every character a quote doubled, and the quotes; 3 bytes a character once it is long and bytes.
      longest.push(3 * (2 * dataset.longestStatus + 2));
    } else if (dimension >= 0) {
      const { codes, labels } = dataset.dimensions[dimension];
      const label = column.endsWith("_label") && dataset.dimensions[dimension].column !== column;
      const encoded = codes.map((code) => long(csvField(label ? (labels[code] ?? null) : code)));
      fields.push((coordinates) => encoded[coordinates[dimension]]);
      const sizes = encoded.map((field) => field.length);
      lengths.push((coordinates) => sizes[coordinates[dimension]]);
      longest.push(sizes.reduce((most, size) => Math.max(most, size), 0));
    } else {
      unknown.push(column);
    }
  }
  const uncovered = dataset.dimensions.filter((dimension) => !columns.includes(dimension.column)).map((d) => d.id);
  const problems = [
    unknown.length ? `column(s) ${unknown.join(", ")} match no dimension, <dimension>_label, value or status` : "",
    uncovered.length ? `dimension(s) ${uncovered.join(", ")} have no column` : "",
    columns.includes("value") ? "" : "no value column declared",
  ].filter(Boolean);
  if (problems.length) {
    const found = dataset.dimensions.map((d) => d.column).join(", ");
    throw new LoadError(`${where}: ${problems.join("; ")}; the dataset's dimensions are ${found}`);
  }
  const sizes = dataset.dimensions.map((dimension) => dimension.codes.length);
  const at = (index: number): number[] => {
    const coordinates = new Array<number>(sizes.length);
    let rest = index;
    for (let position = sizes.length - 1; position >= 0; position--) {
      coordinates[position] = rest % sizes[position];
      rest = Math.floor(rest / sizes[position]);
    }
    return coordinates;
  };
  /** The size of all records when it is more than `limit`, counted without writing them (a label is
   * repeated on every row); at most `limit` otherwise: when every row at its longest stays within it,
   * no row is counted. */
  const bytes = (limit: number): number => {
    const bound = dataset.rows * longest.reduce((sum, length) => sum + length + 1, 0);
    if (bound <= limit) return bound;
    let total = 0;
    for (const index of dataset.cells()) {
      const coordinates = at(index);
      for (const length of lengths) total += length(coordinates, index) + 1;
    }
    return total;
  };
  const record = (index: number): CsvRecord => {
    const coordinates = at(index);
    const values = fields.map((field) => field(coordinates, index));
    if (!values.some((value) => value instanceof Buffer)) return values.join(",") + "\n";
    const pieces: (string | Buffer)[] = [];
    let text = "";
    values.forEach((value, position) => {
      const separator = position + 1 < values.length ? "," : "\n";
      if (typeof value === "string") {
        text += value + separator;
      } else {
        if (text) pieces.push(text);
        pieces.push(value);
        text = separator;
      }
    });
    pieces.push(text);
    return pieces;
  };
  return Object.assign(record, { bytes });
}

/** The longest a number is written ("-1.7976931348623157e+308"). */
const LONGEST_NUMBER = 24;

const long = (field: string): string | Buffer => (field.length >= LONG_FIELD ? Buffer.from(field) : field);

const number = (value: number | null): string | null => (value === null ? null : String(value));

/** NULL is an empty unquoted field; a value is quoted only when it must be (an empty string, a
 * delimiter, a quote, a line end or a backslash in it), so the loader's fast path takes most chunks whole. */
function csvField(value: string | null): string {
  if (value === null) return "";
  return value === "" || /[",\r\n\\]/.test(value) ? `"${value.replaceAll('"', '""')}"` : value;
}
