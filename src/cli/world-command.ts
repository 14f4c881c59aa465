import { join } from 'node:path';
import { WorldDaemon } from '../world/world-daemon.js';
import { readProjectToken, resolveClient } from './client-options.js';
import { DAEMON_OPTIONS_ENV, daemonize, serveUntilStopped } from './daemonize.js';
import { UsageError } from './exit.js';
import { createLogger } from './logger.js';
import { BUSY_POLL_OPTION, busyPollWindow, defaultStateDir, isGenericMountOption, NODE_OPTION_SPECS } from './node-options.js';

/** `acheron world` options; the mount helper's `-o` keys are the same names in snake_case. */
export const WORLD_OPTIONS = {
  'control-url': {
    type: 'string',
    describe:
      'control server; several (servers of one store): comma-separated or repeated, tried in turn (env ACHERON_CONTROL_URL; default ws://127.0.0.1:18790)',
  },
  token: { type: 'string', describe: 'bearer token (env ACHERON_TOKEN; prefer --token-file)' },
  'token-file': { type: 'string', describe: 'file holding the bearer token' },
  project: { type: 'string', describe: 'attach this project session (user tokens)' },
  'project-token-file': { type: 'string', describe: 'file holding the project token' },
  mount: { type: 'string', default: '/mnt/acheron-world', describe: 'mount point' },
  subtree: { type: 'string', choices: ['nodes'], describe: 'mount only nodes/ (on /nodes: ls /nodes/*/services)' },
  'busy-poll-us': BUSY_POLL_OPTION,
  'log-level': { type: 'string', default: 'info', describe: 'fatal|error|warn|info|debug|trace|silent' },
  'log-file': { type: 'string', describe: 'log to this file instead of stderr' },
  daemon: { type: 'boolean', default: false, describe: 'detach and return once the tree is live' },
  foreground: NODE_OPTION_SPECS.foreground,
} as const;

export interface WorldArgs {
  'control-url'?: string | readonly string[] | undefined;
  token?: string | undefined;
  'token-file'?: string | undefined;
  project?: string | undefined;
  'project-token-file'?: string | undefined;
  mount?: string | undefined;
  subtree?: string | undefined;
  /** A number from yargs, a string from mount -o. */
  'busy-poll-us'?: number | string | undefined;
  'log-level'?: string | undefined;
  'log-file'?: string | undefined;
  daemon?: boolean | undefined;
  /** Accepted as `acheron node` accepts it (SPEC §1); the foreground is the default anyway. */
  foreground?: boolean | undefined;
}

/** `-o` keys of a `world:<url>` mount (snake_case of the long options); the URL comes from the source. */
const MOUNT_KEYS = new Set(['token', 'token_file', 'project', 'project_token_file', 'subtree', 'busy_poll_us', 'log_level', 'log_file']);

/** mount -t fuse.acheron world:ws://host:port[,ws://host:port...] <dir> -o token_file=...,project=... */
export function worldMountArgs(source: string, dir: string, optionText: string): { args: WorldArgs; unknown: string[] } {
  const args: Record<string, unknown> = { 'control-url': source.slice('world:'.length), mount: dir, daemon: true };
  const unknown: string[] = [];
  for (const option of optionText.split(',').filter(Boolean)) {
    const eq = option.indexOf('=');
    const key = eq < 0 ? option : option.slice(0, eq);
    if (isGenericMountOption(key)) continue;
    if (!MOUNT_KEYS.has(key) || eq < 0) {
      unknown.push(option);
      continue;
    }
    args[key.replace(/_/g, '-')] = option.slice(eq + 1);
  }
  return { args: args as WorldArgs, unknown };
}

/** `acheron world`: foreground by default; `--daemon` (and the mount helper) detach once the tree is live. */
export async function runWorldCommand(args: WorldArgs): Promise<number> {
  const { urls, token } = await resolveClient(args);
  if (args.subtree !== undefined && args.subtree !== 'nodes') throw new UsageError(`--subtree ${JSON.stringify(args.subtree)}: the only subtree is nodes`);
  const mount = args.mount ?? WORLD_OPTIONS.mount.default;
  const busyPollUs = busyPollWindow(args['busy-poll-us']);
  if (args.daemon && !process.env[DAEMON_OPTIONS_ENV]) {
    const logFile = args['log-file'] ?? join(defaultStateDir(), `world-${mount.replace(/[^A-Za-z0-9._-]+/g, '_')}.log`);
    // The detached process gets the token itself, not the file name: it may start elsewhere.
    await daemonize('world', { ...args, 'control-url': urls.join(','), token, 'token-file': undefined, daemon: false, 'log-file': logFile }, logFile);
    return 0;
  }
  const projectToken = await readProjectToken(args);
  const log = createLogger({ level: args['log-level'] ?? 'info', file: args['log-file'] });
  return serveUntilStopped(
    () =>
      WorldDaemon.start(
        {
          controlUrls: urls,
          token,
          mount,
          busyPollUs,
          ...(args.subtree === 'nodes' ? { subtree: 'nodes' as const } : {}),
          ...(args.project === undefined ? {} : { project: { projectId: args.project, ...(projectToken === undefined ? {} : { projectToken }) } }),
        },
        log,
      ),
    log,
  );
}
