import { close, constants, fstat, open, writeSync } from 'node:fs';
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
    return await openForAppend(file);
  } catch (error) {
    throw new UsageError(`--log-file ${file}: ${(error as Error).message}`);
  }
}

/** A descriptor, not a FileHandle: the logger keeps it until the process ends or a SIGHUP reopens the file. */
const openForAppend = (file: string): Promise<number> => promisify(open)(file, 'a', 0o600);

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
  #fd: number;
  #gone = false;
  /** A line failed part-way (ENOSPC): the next starts on a line of its own, not glued to the torn one. */
  #torn = false;
  /** One reopen at a time: a second SIGHUP's would otherwise close the descriptor the first is about to replace. */
  #reopening: Promise<void> = Promise.resolve();
  /** `file`: the --log-file path that `fd` was opened from (none: stderr). */
  constructor(
    fd: number,
    readonly file?: string,
  ) {
    this.#fd = fd;
  }

  get isGone(): boolean {
    return this.#gone;
  }

  /**
   * The --log-file opened again at its path (logrotate renamed it away: it is made anew), then the
   * old descriptor closed; lines from then on go to the new file. Rejects when that open fails (its
   * directory gone, EACCES): the old descriptor is kept. Stderr, a FIFO or a device stay as they are:
   * nothing to rotate there, and opening a FIFO again would wait for a reader.
   */
  reopen(): Promise<void> {
    const reopened = this.#reopening.then(() => this.#reopenNow());
    this.#reopening = reopened.catch(() => undefined);
    return reopened;
  }

  async #reopenNow(): Promise<void> {
    if (this.file === undefined || !(await promisify(fstat)(this.#fd)).isFile()) return;
    const old = this.#fd;
    // Non-blocking: a FIFO put at the path (no reader: ENXIO) must not hold this and every later SIGHUP.
    const fd = await promisify(open)(this.file, constants.O_WRONLY | constants.O_APPEND | constants.O_CREAT | constants.O_NONBLOCK, 0o600);
    if (!(await promisify(fstat)(fd)).isFile()) {
      await promisify(close)(fd);
      throw new Error(`${this.file} is not a regular file now`);
    }
    this.#fd = fd;
    this.#gone = false;
    this.#torn = false;
    await promisify(close)(old);
  }

  write(line: string): void {
    if (this.#gone) return;
    const whole = Buffer.from(this.#torn ? `\n${line}` : line);
    let rest = whole;
    let waits = 0;
    while (rest.length > 0) {
      try {
        rest = rest.subarray(writeSync(this.#fd, rest));
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

/** The root logger and where its lines go: a daemon's SIGHUP reopens that (reopenLogOnHangup). */
export interface RootLogger {
  readonly log: Logger;
  readonly destination: LogDestination;
}

/**
 * The root logger: stderr or --log-file (its directory made first); stdout stays for command output.
 * Secrets are redacted. Synchronous writes (LogDestination), which stop once the descriptor is gone.
 */
export async function createLogger(options: { level: string; file?: string | undefined }): Promise<RootLogger> {
  checkLogLevel(options.level);
  // Opened once, here, where a failure names the option (pino's own open would throw a bare EISDIR;
  // opening twice would end a FIFO's reader at the first close and block the second open).
  const fd = options.file ? await openLogFile(options.file) : 2;
  // Loaded here, not at import: a parent that only checks --log-level and detaches a daemon writes no log.
  const { pino } = await import('pino');
  const destination = new LogDestination(fd, options.file);
  const log = pino(
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
  return { log, destination };
}

/**
 * SIGHUP in a daemon (node, WorldFS, control): its --log-file is reopened first, so that the line
 * `then` logs already goes to the new file (logrotate's postrotate `kill -HUP`). A reopen that
 * fails is a warning, in the file still open, and `then` runs all the same.
 */
export function reopenLogOnHangup({ log, destination }: RootLogger, then: () => void): void {
  process.on('SIGHUP', () => {
    void destination
      .reopen()
      .catch((error: unknown) =>
        log.warn({ err: error, log_file: destination.file }, `log file not reopened: ${(error as Error).message}; logging on to the file opened before`),
      )
      .then(then);
  });
}
