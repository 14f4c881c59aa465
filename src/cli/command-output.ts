import { EXIT_FAILURE, EXIT_OK } from './exit.js';

/**
 * stdout and stderr as every command leaves them (SPEC §1), for `main`'s exit path:
 * - the exit waits until what was written has reached the reader: Node writes to a pipe
 *   asynchronously, and `process.exit` right after the write cut a large `--json` short at a slow
 *   reader (past the pipe's 64 KiB buffer);
 * - a reader that goes away (`| head`) ends the command quietly with its own exit code, 0 when it
 *   did its job, as `yes | head` users expect: Node ignores SIGPIPE, so the next write fails with
 *   EPIPE, which unhandled was a stack trace. A command that runs until stopped (`node watch`)
 *   stops on `readerGone` as on SIGTERM;
 * - any other failure of stdout (EIO) lost output: exit 1 with one line naming it.
 */
export class CommandOutput {
  /** Settles when stdout's reader has gone (EPIPE): nothing printed from now on reaches anyone. */
  readonly readerGone: Promise<void>;
  readonly #streams: readonly NodeJS.WritableStream[];
  readonly #stderr: NodeJS.WritableStream;
  #failure: Error | undefined;

  constructor(stdout: NodeJS.WritableStream, stderr: NodeJS.WritableStream) {
    let gone = (): void => undefined;
    this.readerGone = new Promise((resolve) => (gone = resolve));
    stdout.on('error', (error: NodeJS.ErrnoException) => {
      if (error.code === 'EPIPE') gone();
      else this.#failure ??= error;
    });
    // A failing stderr has nowhere to be told: the command goes on without its diagnostics.
    stderr.on('error', () => undefined);
    this.#streams = [stdout, stderr];
    this.#stderr = stderr;
  }

  /** The exit code for a command that returned `code`, once its output is out (see the class). */
  async exitCode(code: number): Promise<number> {
    await this.#flushed();
    if (!this.#failure) return code;
    this.#stderr.write(`acheron: stdout: ${this.#failure.message}\n`);
    await this.#flushed();
    return code === EXIT_OK ? EXIT_FAILURE : code;
  }

  /** Everything written so far has reached the OS, or cannot: an empty write's callback comes after the ones before it. */
  async #flushed(): Promise<void> {
    await Promise.all(this.#streams.map((stream) => new Promise<void>((resolve) => stream.write('', () => resolve()))));
  }
}
