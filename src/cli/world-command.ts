import { join, resolve } from 'node:path';
import { resolveClient, tokenFile } from './client-options.js';
import { DAEMON_OPTIONS_ENV, daemonize, serveUntilStopped } from './daemonize.js';
import { UsageError } from './exit.js';
import { withFlagTerms } from './flag-terms.js';
import { checkLogLevel, createLogger } from './logger.js';
import { busyPollWindow, defaultStateDir } from './node-options.js';
import { WORLD_OPTIONS, type WorldArgs } from './world-options.js';

/**
 * What `ps` shows of a detached WorldFS daemon, so an operator finds a mount's daemon: its mount,
 * servers, project and subtree. No token, and each URL without user info or query (a credential could hide there).
 */
export function worldShown(mount: string, urls: readonly string[], args: Pick<WorldArgs, 'project' | 'subtree'>): string[] {
  const bare = (url: string): string => url.replace(/\/\/[^/@]*@/, '//').replace(/[?#].*$/, '');
  return [
    '--mount',
    mount,
    '--control-url',
    urls.map(bare).join(','),
    ...(args.project === undefined ? [] : ['--project', args.project]),
    ...(args.subtree === undefined ? [] : ['--subtree', args.subtree]),
  ];
}

/** `acheron world`: foreground by default; `--daemon` (and the mount helper) detach once the tree is live. */
export async function runWorldCommand(args: WorldArgs): Promise<number> {
  // Read now for a usage error before anything mounts; with a file, the daemon reads it again at every connection.
  // An empty path is no path (the working directory, or stderr for --log-file): refused as `acheron node` refuses one.
  for (const flag of ['mount', 'log-file', 'token-file', 'project-token-file'] as const)
    if (args[flag] === '') throw new UsageError(`--${flag}: needs a value (empty given)`);
  const { urls, token } = await resolveClient(args);
  if (args.subtree !== undefined && args.subtree !== 'nodes') throw new UsageError(`--subtree ${JSON.stringify(args.subtree)}: the only subtree is nodes`);
  const mount = args.mount ?? WORLD_OPTIONS.mount.default;
  const busyPollUs = busyPollWindow(args['busy-poll-us']);
  // Checked before a daemon detaches: from mount -o it reaches no other check.
  const level = checkLogLevel(args['log-level'] ?? 'info');
  const projectTokenPath = args['project-token-file'];
  const projectToken = projectTokenPath === undefined ? undefined : tokenFile('--project-token-file', projectTokenPath);
  // Read now for a usage error (missing, empty) before a daemon detaches; the daemon reads it again.
  await projectToken?.read();
  if (args.daemon && !process.env[DAEMON_OPTIONS_ENV]) {
    const logFile = args['log-file'] ?? join(defaultStateDir(), `world-${mount.replace(/[^A-Za-z0-9._-]+/g, '_')}.log`);
    // Files by absolute name: the detached process reads them again.
    const absolute = (path: string | undefined): string | undefined => (path === undefined ? undefined : resolve(path));
    const files = { 'token-file': absolute(args['token-file']), 'project-token-file': absolute(args['project-token-file']) };
    // A token from a file stays there: in the daemon's options it would go stale (and show in /proc/<pid>/environ).
    const given = files['token-file'] === undefined ? { token } : { token: undefined };
    const options = { ...args, ...files, ...given, 'control-url': urls.join(','), daemon: false, 'log-file': logFile };
    await daemonize('world', options, logFile, worldShown(resolve(mount), urls, args));
    return 0;
  }
  // Loaded only here: the parent that detaches the daemon (the mount helper) needs no FUSE or ws code.
  const { WorldDaemon } = await import('../world/world-daemon.js');
  const root = await createLogger({ level, file: args['log-file'] });
  const { log } = root;
  return serveUntilStopped(
    // A refusal in flag terms already here: with --daemon, the waiting parent gets only the message.
    () =>
      WorldDaemon.start(
        {
          controlUrls: urls,
          token: args['token-file'] === undefined ? token : tokenFile('--token-file', args['token-file']),
          mount,
          busyPollUs,
          access: { allowOther: args['allow-other'] === true, defaultPermissions: args['default-permissions'] === true },
          ...(args.subtree === 'nodes' ? { subtree: 'nodes' as const } : {}),
          ...(args.project === undefined ? {} : { project: { projectId: args.project, ...(projectToken === undefined ? {} : { projectToken }) } }),
        },
        log,
      ).catch((error: unknown) => {
        throw withFlagTerms(error);
      }),
    root,
    () => log.info('SIGHUP: nothing to reload (the mount follows the control server and its token files by itself); still running'),
  );
}
