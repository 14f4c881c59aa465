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
 * The root logger: stderr or --log-file (its directory made first); stdout stays for command output.
 * Secrets are redacted. Synchronous writes, so the lines before a crash or an exit are never lost.
 */
export async function createLogger(options: { level: string; file?: string | undefined }): Promise<Logger> {
  checkLogLevel(options.level);
  if (options.file) {
    try {
      await makeDirectory(dirname(options.file));
    } catch (error) {
      throw new UsageError(`--log-file ${options.file}: ${(error as Error).message}`);
    }
  }
  // Loaded here, not at import: a parent that only checks --log-level and detaches a daemon writes no log.
  const { pino } = await import('pino');
  const destination = options.file ? pino.destination({ dest: options.file, sync: true }) : pino.destination({ fd: 2, sync: true });
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
