/** pino's levels, quietest last. */
export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;

/** `--log-level` and `--log-file`, alike for `acheron node`, `world` and `control`. */
export const LOG_OPTIONS = {
  'log-level': { type: 'string', default: 'info', choices: LOG_LEVELS, describe: 'log this level and above' },
  'log-file': { type: 'string', describe: 'log to this file instead of stderr' },
} as const;
