import { spawn, type ChildProcess } from 'node:child_process';
import { fstatSync } from 'node:fs';
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
  /** Settles `readerGone`. */
  #gone: () => void = () => undefined;
  #readerWatch: ChildProcess | undefined;

  constructor(stdout: NodeJS.WritableStream, stderr: NodeJS.WritableStream) {
    this.readerGone = new Promise((resolve) => (this.#gone = resolve));
    stdout.on('error', (error: NodeJS.ErrnoException) => {
      if (error.code === 'EPIPE') this.#gone();
      else this.#failure ??= error;
    });
    // A failing stderr has nowhere to be told: the command goes on without its diagnostics.
    stderr.on('error', () => undefined);
    this.#streams = [stdout, stderr];
    this.#stderr = stderr;
  }

  /**
   * For a command that may print nothing for hours (`node watch | head -1` on a quiet fleet): when
   * stdout is a pipe, `readerGone` also settles once its reader has gone without a write to find out.
   * Node cannot poll a write-only pipe for that (POLLERR); coreutils' `tail -f` does, and dies of
   * SIGPIPE then, so one runs with this stdout as its own, following /dev/null (it never writes), and
   * goes with this process (`--pid`) or at `exitCode`. Without a pipe or a GNU tail, the next write finds out.
   */
  watchReader(fd = 1): void {
    try {
      if (!fstatSync(fd).isFIFO()) return;
    } catch {
      return; // stdout closed (>&-): nothing to watch
    }
    const tail = spawn('tail', ['-f', `--pid=${process.pid}`, '/dev/null'], { stdio: ['ignore', fd, 'ignore'] });
    tail.on('error', () => undefined);
    tail.on('exit', (_code, signal) => {
      if (signal === 'SIGPIPE') this.#gone();
    });
    tail.unref();
    this.#readerWatch = tail;
  }

  /** The exit code for a command that returned `code`, once its output is out (see the class). */
  async exitCode(code: number): Promise<number> {
    // Its copy of stdout would keep a reader waiting for the end of the output until it noticed this exit.
    this.#readerWatch?.kill();
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
