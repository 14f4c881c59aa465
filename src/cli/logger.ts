import { open } from 'node:fs';
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

/**
 * The root logger: stderr or --log-file (its directory made first); stdout stays for command output.
 * Secrets are redacted. Synchronous writes, so the lines before a crash or an exit are never lost.
 */
export async function createLogger(options: { level: string; file?: string | undefined }): Promise<Logger> {
  checkLogLevel(options.level);
  // Opened once, here, where a failure names the option (pino's own open would throw a bare EISDIR;
  // opening twice would end a FIFO's reader at the first close and block the second open).
  const fd = options.file ? await openLogFile(options.file) : 2;
  // Loaded here, not at import: a parent that only checks --log-level and detaches a daemon writes no log.
  const { pino } = await import('pino');
  const destination = pino.destination({ fd, sync: true });
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
