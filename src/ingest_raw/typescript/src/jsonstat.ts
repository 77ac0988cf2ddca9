/**
 * JSON-stat 2.0 datasets (https://json-stat.org/full/), the format statistics offices serve: one
 * row per cell. Cells are in row-major order over `id` (the last dimension varies fastest).
 *
 * Columns of a source: the lowercased id of every dimension (the category code), optionally
 * `<dimension>_label` (the category label), `value` and optionally `status`.
 */

import { LoadError } from "./errors.js";

export interface Dimension {
  id: string;
  column: string;
  codes: string[];
  labels: Record<string, string>;
}

export interface Dataset {
  label: string;
  source: string;
  updated: string;
  dimensions: Dimension[];
  cells: number;
  value(index: number): number | null;
  status(index: number): string | null;
}

type Json = Record<string, unknown>;

const isObject = (value: unknown): value is Json => typeof value === "object" && value !== null && !Array.isArray(value);

export function parseJsonStat(content: Buffer, where: string): Dataset {
  const fail = (message: string): never => {
    throw new LoadError(`${where}: ${message}`);
  };
  const document = parseJson(content, where);
  if (!isObject(document)) return fail("expected a JSON-stat 2.0 dataset object");
  if (document.version !== "2.0" || document.class !== "dataset") {
    return fail(`expected "version": "2.0" and "class": "dataset", got ${JSON.stringify(document.version)} and ${JSON.stringify(document.class)}`);
  }
  const ids = document.id;
  const sizes = document.size;
  if (!Array.isArray(ids) || !Array.isArray(sizes) || ids.length !== sizes.length || ids.length === 0) {
    return fail('"id" and "size" must be arrays of the same, non-zero length');
  }
  if (!isObject(document.dimension)) return fail('"dimension" must be an object');
  const dimensionsJson = document.dimension;
  const dimensions = ids.map((id, position): Dimension => {
    const size = sizes[position];
    if (typeof id !== "string" || !Number.isSafeInteger(size) || size < 0) return fail(`id[${position}] / size[${position}] are not a name and a count`);
    const category = (dimensionsJson[id] as Json | undefined)?.category;
    if (!isObject(category)) return fail(`dimension ${id}: no "category" object`);
    const codes = categoryCodes(category, size as number, (message) => fail(`dimension ${id}: ${message}`));
    const labels = isObject(category.label) ? (category.label as Record<string, string>) : {};
    return { id, column: id.toLowerCase(), codes, labels };
  });
  const cells = dimensions.reduce((product, dimension) => product * dimension.codes.length, 1);
  const value = cellValues(document.value, cells, (message) => fail(`"value" ${message}`));
  const status = cellStatus(document.status, cells, (message) => fail(`"status" ${message}`));
  const text = (key: string) => (typeof document[key] === "string" ? (document[key] as string) : "");
  return { label: text("label"), source: text("source"), updated: text("updated"), dimensions, cells, value, status };
}

function parseJson(content: Buffer, where: string): unknown {
  let text: string;
  try {
    text = new TextDecoder("utf-8", { fatal: true }).decode(content);
  } catch {
    throw new LoadError(`${where}: not valid UTF-8`);
  }
  try {
    return JSON.parse(text);
  } catch (error) {
    const message = (error as Error).message;
    const position = /position (\d+)/.exec(message);
    if (!position) throw new LoadError(`${where}: invalid JSON: ${message}`);
    const before = text.slice(0, Number(position[1]));
    const line = before.split("\n").length;
    const column = before.length - before.lastIndexOf("\n");
    throw new LoadError(`${where} line ${line}, column ${column}: invalid JSON: ${message}`);
  }
}

function categoryCodes(category: Json, size: number, fail: (message: string) => never): string[] {
  const { index, label } = category;
  let codes: string[];
  if (Array.isArray(index)) {
    codes = index.map(String);
  } else if (isObject(index)) {
    codes = new Array(size);
    for (const [code, position] of Object.entries(index)) {
      if (!Number.isSafeInteger(position) || (position as number) < 0 || (position as number) >= size || codes[position as number] !== undefined) {
        return fail(`category ${code} has position ${JSON.stringify(position)}; expected a distinct integer below ${size}`);
      }
      codes[position as number] = code;
    }
  } else if (isObject(label) && Object.keys(label).length === 1) {
    codes = Object.keys(label);
  } else {
    return fail('no category "index" (allowed only for a single labelled category)');
  }
  if (codes.length !== size || codes.includes(undefined as unknown as string)) {
    return fail(`${codes.filter((code) => code !== undefined).length} categories but size ${size}`);
  }
  if (new Set(codes).size !== codes.length) return fail("repeated category codes");
  return codes;
}

function cellValues(value: unknown, cells: number, fail: (message: string) => never): (index: number) => number | null {
  const check = (item: unknown, index: number | string): number | null => {
    if (item === null || (typeof item === "number" && Number.isFinite(item))) return item as number | null;
    return fail(`[${index}] is ${JSON.stringify(item)}; expected a number or null`);
  };
  if (Array.isArray(value)) {
    if (value.length !== cells) fail(`has ${value.length} cells; the dimension sizes multiply to ${cells}`);
    value.forEach(check);
    return (index) => value[index] as number | null;
  }
  if (isObject(value)) {
    for (const [key, item] of Object.entries(value)) {
      if (!/^\d+$/.test(key) || Number(key) >= cells) fail(`key ${JSON.stringify(key)} is not a cell index below ${cells}`);
      check(item, key);
    }
    return (index) => (value[String(index)] as number | undefined) ?? null;
  }
  return fail("must be an array or an object of cell index to value");
}

function cellStatus(status: unknown, cells: number, fail: (message: string) => never): (index: number) => string | null {
  if (status === undefined || status === null) return () => null;
  if (typeof status === "string") return () => status;
  if (Array.isArray(status)) {
    if (status.length === 1) return () => status[0] as string;
    if (status.length !== cells) fail(`has ${status.length} entries; expected 1 or ${cells}`);
    return (index) => (status[index] as string | null) ?? null;
  }
  if (isObject(status)) return (index) => (status[String(index)] as string | undefined) ?? null;
  return fail("must be a string, an array or an object");
}

/** "region=R01, month=2016M01, contents=cpi": where cell `index` sits. */
export function describeCell(dataset: Dataset, index: number): string {
  const parts: string[] = [];
  let rest = index;
  for (let position = dataset.dimensions.length - 1; position >= 0; position--) {
    const dimension = dataset.dimensions[position];
    parts.unshift(`${dimension.id}=${dimension.codes[rest % dimension.codes.length]}`);
    rest = Math.floor(rest / dimension.codes.length);
  }
  return parts.join(", ");
}

/**
 * CSV records (one per cell, in the declared column order) for COPY. Fails naming every declared
 * column the dataset cannot fill and every dimension without a column.
 */
export function csvRecords(dataset: Dataset, columns: string[], where: string): (index: number) => string {
  const fields: ((coordinates: number[], index: number) => string | null)[] = [];
  const unknown: string[] = [];
  for (const column of columns) {
    const dimension = dataset.dimensions.findIndex((d) => d.column === column || `${d.column}_label` === column);
    if (column === "value") {
      fields.push((_, index) => number(dataset.value(index)));
    } else if (column === "status") {
      fields.push((_, index) => dataset.status(index));
    } else if (dimension >= 0) {
      const { codes, labels } = dataset.dimensions[dimension];
      fields.push(column.endsWith("_label") && dataset.dimensions[dimension].column !== column
        ? (coordinates) => labels[codes[coordinates[dimension]]] ?? null
        : (coordinates) => codes[coordinates[dimension]]);
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
  return (index) => {
    const coordinates = new Array<number>(sizes.length);
    let rest = index;
    for (let position = sizes.length - 1; position >= 0; position--) {
      coordinates[position] = rest % sizes[position];
      rest = Math.floor(rest / sizes[position]);
    }
    return fields.map((field) => csvField(field(coordinates, index))).join(",") + "\n";
  };
}

const number = (value: number | null): string | null => (value === null ? null : String(value));

/** NULL is an empty unquoted field; every value is quoted, so an empty string stays a string. */
function csvField(value: string | null): string {
  return value === null ? "" : `"${value.replaceAll('"', '""')}"`;
}
