/** Errors of a load, split by what a retry could change, with the exit codes every source program uses. */

/** sysexits.h: a scheduler may retry 75, never 65. */
export const EXIT_PERMANENT = 65;
export const EXIT_TRANSIENT = 75;
export const EXIT_INTERRUPTED = 130;

/** A load that did not happen; the table keeps its previous contents. */
export class LoadError extends Error {
  override name = "LoadError";
  constructor(
    message: string,
    readonly transient = false,
    options?: ErrorOptions,
  ) {
    super(message, options);
  }

  get exitCode(): number {
    return this.transient ? EXIT_TRANSIENT : EXIT_PERMANENT;
  }
}

/** SIGINT or SIGTERM arrived: the transaction was rolled back. */
export class Interrupted extends Error {
  override name = "Interrupted";
}
