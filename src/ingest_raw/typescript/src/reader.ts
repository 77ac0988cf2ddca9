/**
 * A reader program: it reads and parses a source's input and writes CSV rows (a header naming the
 * declared columns, then one record per row) on standard output. The one loader,
 * `python -m ingest_raw.sources <source>`, starts it, loads the rows and keeps every promise of a
 * load: atomic replace, locks, commit truth, checks, exit codes, error wording. A reader only says
 * what is wrong and where: one line on stderr and exit 65 (bad input, retrying cannot help) or 75
 * (a retry may help); anything else it did not foresee exits 70.
 *
 * Options: --input PATH_OR_URL, --timeout SECONDS (an HTTP read may stall), --describe-row N (print
 * where row N of the output comes from in the input, for the loader's error messages).
 */

import { once } from "node:events";
import { parseArgs } from "node:util";

import { declarationFromEnv } from "./declaration.js";
import { EXIT_SOFTWARE, LoadError } from "./errors.js";
import { readInput } from "./input.js";
import { csvRecords, type Dataset, describeCell, parseJsonStat } from "./jsonstat.js";

const BATCH_BYTES = 1 << 16;
/** The rows' CSV may be this many times the source's max_record_bytes (4 GiB for the default 64 MiB). */
const OUTPUT_LIMIT = 64;

export async function runJsonStatReader(argv: string[] = process.argv.slice(2)): Promise<number> {
  try {
    const declaration = declarationFromEnv();
    const { values: options } = parseArgs({
      args: argv,
      options: { input: { type: "string" }, timeout: { type: "string" }, "describe-row": { type: "string" } },
    });
    const location = options.input ?? declaration.input;
    const timeoutSeconds = Number(options.timeout ?? declaration.timeout_seconds);
    if (!(timeoutSeconds > 0)) throw new LoadError(`--timeout ${options.timeout}: expected a number of seconds above 0`);
    const input = await readInput(location, {
      timeoutSeconds,
      deadlineSeconds: declaration.deadline_seconds,
      redirectHosts: declaration.redirect_hosts ?? [],
      maxBytes: declaration.max_record_bytes,
    });
    const dataset = parseJsonStat(input, location);
    const columns = declaration.columns.map((column) => column.name);
    const record = csvRecords(dataset, columns, location);
    if (options["describe-row"] !== undefined) {
      process.stdout.write(describeRow(dataset, Number(options["describe-row"])) + "\n");
      return 0;
    }
    // Rows are never more than the cells the input lists, but a long label or status is repeated on
    // each: megabytes of input could make terabytes of rows, to fail only at the deadline, and retried.
    const limit = OUTPUT_LIMIT * declaration.max_record_bytes;
    const bytes = record.bytes(limit);
    if (bytes > limit) {
      throw new LoadError(
        `${location}: its rows would make ${bytes} bytes of CSV, more than ${limit} (${OUTPUT_LIMIT} times the source's max_record_bytes); a long label, code or status repeats on every row`,
      );
    }
    await write(columns.join(",") + "\n");
    let batch = "";
    for (const index of dataset.cells()) {
      const row = record(index);
      if (typeof row === "string") {
        batch += row;
        if (batch.length >= BATCH_BYTES) {
          await write(batch);
          batch = "";
        }
        continue;
      }
      // A row with a long field (a label of megabytes): its pieces go out as they are, the long ones
      // as the bytes encoded once.
      await write(batch);
      batch = "";
      for (const piece of row) await write(piece);
    }
    await write(batch);
    return 0;
  } catch (error) {
    if (error instanceof LoadError) {
      process.stderr.write(error.message.replaceAll("\n", " ") + "\n");
      return error.exitCode;
    }
    process.stderr.write(`the reader failed unexpectedly: ${(error as Error)?.stack ?? error}\n`);
    return EXIT_SOFTWARE;
  }
}

/** "cell 17 (region=R01, month=2016M06, contents=change)" for row `row` (1 is the first after the header). */
function describeRow(dataset: Dataset, row: number): string {
  let seen = 0;
  for (const index of dataset.cells()) if (++seen === row) return `cell ${index} (${describeCell(dataset, index)})`;
  return `row ${row}`;
}

async function write(text: string | Buffer): Promise<void> {
  if (text.length && !process.stdout.write(text)) await once(process.stdout, "drain");
}
