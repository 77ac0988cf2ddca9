/** Errors of a reader program, split by what a retry could change, with the exit codes the loader reads. */

/** sysexits.h: the loader fails a load for good on 65 (and 70, a bug here), retries 75. */
export const EXIT_PERMANENT = 65;
export const EXIT_SOFTWARE = 70;
export const EXIT_TRANSIENT = 75;

/** An input that cannot become rows; the message names the input and the place in it. */
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
