import { open, writeSync } from 'node:fs';
import { promisify } from 'node:util';
import { dirname } from 'node:path';
import type { Logger } from 'pino';
import { makeDirectory } from '../store/make-directory.js';
import { UsageError } from './exit.js';
import { LOG_LEVELS } from './log-options.js';

/** `--log-level` as given (argv, mount -o, config): one of LOG_LEVELS, or a usage error naming it. */
export function checkLogLevel(level: string): string {
  if (!(LOG_LEVELS as readonly string[]).includes(level))
    throw new UsageError(`--log-level ${JSON.stringify(level)}: expected one of ${LOG_LEVELS.join(', ')}`);
  return level;
}

/**
 * `--log-file` opened for appending (mode 0600 when made), its directory made first; anything that
 * fails (a directory that cannot be made, a directory given as the file) is a usage error naming it.
 */
export async function openLogFile(file: string): Promise<number> {
  try {
    await makeDirectory(dirname(file));
    // A descriptor, not a FileHandle: the logger keeps it for the process's life.
    return await promisify(open)(file, 'a', 0o600);
  } catch (error) {
    throw new UsageError(`--log-file ${file}: ${(error as Error).message}`);
  }
}

/** Write errors after which the descriptor takes nothing more: the terminal closed (EIO), the reader left (EPIPE). */
const GONE = new Set(['EIO', 'EPIPE', 'EBADF', 'ECONNRESET', 'ENXIO']);
/** A descriptor that says EAGAIN (non-blocking, full) is waited for this long, in steps of 10 ms, before its line is dropped. */
const EAGAIN_STEPS = 100;

/**
 * Where the logger's lines go, written synchronously (none lost before a crash or an exit). Once the
 * descriptor is gone (a foreground daemon's terminal closed, a FIFO's reader left), further lines are
 * dropped, never kept nor retried: the daemon keeps serving. pino's own destination threw such an
 * error from the next log line, which ended the process.
 */
export class LogDestination {
  #gone = false;
  /** A line failed part-way (ENOSPC): the next starts on a line of its own, not glued to the torn one. */
  #torn = false;
  constructor(readonly fd: number) {}

  get isGone(): boolean {
    return this.#gone;
  }

  write(line: string): void {
    if (this.#gone) return;
    const whole = Buffer.from(this.#torn ? `\n${line}` : line);
    let rest = whole;
    let waits = 0;
    while (rest.length > 0) {
      try {
        rest = rest.subarray(writeSync(this.fd, rest));
        if (rest.length === 0) this.#torn = false;
      } catch (error) {
        const code = (error as NodeJS.ErrnoException).code ?? '';
        if (code === 'EAGAIN' && waits++ < EAGAIN_STEPS) Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 10);
        else {
          // Gone: nothing more is written. Another failure (ENOSPC) drops this line; the next may fit.
          this.#gone = GONE.has(code);
          this.#torn ||= rest.length < whole.length;
          return;
        }
      }
    }
  }
}

/**
 * The root logger: stderr or --log-file (its directory made first); stdout stays for command output.
 * Secrets are redacted. Synchronous writes (LogDestination), which stop once the descriptor is gone.
 */
export async function createLogger(options: { level: string; file?: string | undefined }): Promise<Logger> {
  checkLogLevel(options.level);
  // Opened once, here, where a failure names the option (pino's own open would throw a bare EISDIR;
  // opening twice would end a FIFO's reader at the first close and block the second open).
  const fd = options.file ? await openLogFile(options.file) : 2;
  // Loaded here, not at import: a parent that only checks --log-level and detaches a daemon writes no log.
  const { pino } = await import('pino');
  const destination = new LogDestination(fd);
  return pino(
    {
      level: options.level,
      base: { pid: process.pid },
      redact: {
        paths: ['token', 'node_secret', 'authorization', 'join_token', '*.token', '*.node_secret', '*.authorization', '*.join_token'],
        censor: '[redacted]',
      },
    },
    destination,
  );
}
