import { join } from 'node:path';
import { WorldDaemon } from '../world/world-daemon.js';
import { readProjectToken, resolveClient } from './client-options.js';
import { DAEMON_OPTIONS_ENV, daemonize, serveUntilStopped } from './daemonize.js';
import { UsageError } from './exit.js';
import { checkLogLevel, createLogger } from './logger.js';
import { busyPollWindow, defaultStateDir } from './node-options.js';
import { WORLD_OPTIONS, type WorldArgs } from './world-options.js';

/** `acheron world`: foreground by default; `--daemon` (and the mount helper) detach once the tree is live. */
export async function runWorldCommand(args: WorldArgs): Promise<number> {
  const { urls, token } = await resolveClient(args);
  if (args.subtree !== undefined && args.subtree !== 'nodes') throw new UsageError(`--subtree ${JSON.stringify(args.subtree)}: the only subtree is nodes`);
  const mount = args.mount ?? WORLD_OPTIONS.mount.default;
  const busyPollUs = busyPollWindow(args['busy-poll-us']);
  // Checked before a daemon detaches: from mount -o it reaches no other check.
  const level = checkLogLevel(args['log-level'] ?? 'info');
  if (args.daemon && !process.env[DAEMON_OPTIONS_ENV]) {
    const logFile = args['log-file'] ?? join(defaultStateDir(), `world-${mount.replace(/[^A-Za-z0-9._-]+/g, '_')}.log`);
    // The detached process gets the token itself, not the file name: it may start elsewhere.
    await daemonize('world', { ...args, 'control-url': urls.join(','), token, 'token-file': undefined, daemon: false, 'log-file': logFile }, logFile);
    return 0;
  }
  // Read now for a usage error before anything mounts; the daemon reads it again at every attach.
  const tokenPath = args['project-token-file'];
  await readProjectToken(args);
  const projectToken = tokenPath ? { path: tokenPath, read: async () => (await readProjectToken(args)) as string } : undefined;
  const log = await createLogger({ level, file: args['log-file'] });
  return serveUntilStopped(
    () =>
      WorldDaemon.start(
        {
          controlUrls: urls,
          token,
          mount,
          busyPollUs,
          access: { allowOther: args['allow-other'] === true, defaultPermissions: args['default-permissions'] === true },
          ...(args.subtree === 'nodes' ? { subtree: 'nodes' as const } : {}),
          ...(args.project === undefined ? {} : { project: { projectId: args.project, ...(projectToken === undefined ? {} : { projectToken }) } }),
        },
        log,
      ),
    log,
  );
}
