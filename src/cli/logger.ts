import { pino, type Logger } from 'pino';

export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;

/**
 * The root logger: stderr or --log-file; stdout stays for command output. Secrets are redacted.
 * Synchronous writes, so the lines before a crash or an exit are never lost.
 */
export function createLogger(options: { level: string; file?: string | undefined }): Logger {
  const destination = options.file ? pino.destination({ dest: options.file, mkdir: true, sync: true }) : pino.destination({ fd: 2, sync: true });
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
