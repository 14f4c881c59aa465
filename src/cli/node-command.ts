import { constants } from 'node:fs';
import { access } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { inspectNodeCredentials } from '../node/node-credentials.js';
import type { NodeDaemonOptions } from '../node/daemon.js';
import { parseExport } from '../node/export-spec.js';
import { controlUrls, givenToken } from './client-options.js';
import { DAEMON_OPTIONS_ENV, daemonize, serveUntilStopped } from './daemonize.js';
import { checkIdentifier, UsageError } from './exit.js';
import { createLogger } from './logger.js';
import { readOptionFile } from './option-file.js';
import { readTokenFile } from '../protocol/token-text.js';
import { makeDirectory, namingOption } from '../store/make-directory.js';
import { defaultStateFile, type NodeOptionValues } from './node-options.js';

export function toDaemonOptions(values: NodeOptionValues): NodeDaemonOptions {
  const nodeId = values['node-id'] as string;
  checkIdentifier('--node-id', nodeId);
  const labels: Record<string, string> = {};
  for (const label of values.label ?? []) {
    const eq = label.indexOf('=');
    if (eq <= 0) throw new UsageError(`--label ${JSON.stringify(label)}: expected key=value`);
    labels[label.slice(0, eq)] = label.slice(eq + 1);
  }
  for (const id of values['terminal-id'] ?? []) checkIdentifier('--terminal-id', id);
  let exports;
  try {
    exports = (values.export ?? []).map(parseExport);
  } catch (error) {
    throw new UsageError((error as Error).message);
  }
  return {
    nodeId,
    mount: values.mount as string,
    // Absolute, as ERRORS.json and the log name them: read through a mount, from anywhere.
    serviceManifests: (values['service-manifest'] ?? []).map((path) => resolve(path)),
    servicesDirs: (values['services-dir'] ?? []).map((path) => resolve(path)),
    exports,
    fsService: values['fs-service'] !== false,
    terminalIds: values['terminal-id'] ?? [],
    labels,
    shutdownGraceMs: values['shutdown-grace-ms'] as number,
    stateFile: values['state-file'] ?? defaultStateFile(nodeId),
    stateSync: values['state-sync'] === 'batch' ? 'batch' : 'always',
    busyPollUs: values['busy-poll-us'] as number,
    access: { allowOther: values['allow-other'] === true, defaultPermissions: values['default-permissions'] === true },
    manifestReloadIntervalMs: values['manifest-reload-interval-ms'] as number,
    reconnectBackoffMs: values['reconnect-backoff-ms'] as number,
    reconnectBackoffMaxMs: values['reconnect-backoff-max-ms'] as number,
    ...(values['control-url'] ? { controlUrls: controlUrls(values['control-url']) } : {}),
    ...(values['join-token'] ? { joinToken: givenToken('--join-token', values['join-token']) } : {}),
    ...(values['join-token-file'] ? { joinTokenFile: values['join-token-file'] } : {}),
    ...(values['driver-user'] ? { driverUser: values['driver-user'] } : {}),
  };
}

/**
 * A node given a control server must be able to join it (SPEC §6): with its secret from an earlier
 * join, or a join token it can read. Otherwise it would mount, report success and retry forever. A
 * state file it cannot read stops it here, named; a damaged one is named with what is wrong.
 */
async function checkCanJoin(options: NodeDaemonOptions): Promise<void> {
  if (!options.controlUrls) return;
  const { credentials, damage } = await inspectNodeCredentials(options.stateFile, options.nodeId);
  if (credentials || options.joinToken) return;
  const file = options.joinTokenFile;
  if (!file) {
    const why = damage === undefined ? 'it has not joined yet' : `it ${damage}: given a join token, the node sets it aside and joins again`;
    throw new UsageError(`--control-url needs --join-token-file: ${options.stateFile} holds no node secret for ${options.nodeId} (${why})`);
  }
  const content = await readTokenFile(file, (path) => readOptionFile('--join-token-file', path));
  if (!content.isUsable) throw new UsageError(`--join-token-file ${file}: the file ${content.problem}`);
}

/** `acheron node`: foreground by default; `--daemon` (and the mount helper) detach once live. */
export async function runNodeCommand(values: NodeOptionValues): Promise<number> {
  const options = toDaemonOptions(values);
  await checkCanJoin(options);
  if (values.daemon && !process.env[DAEMON_OPTIONS_ENV]) {
    // The default log file goes beside the state file: a directory there that cannot be made, or
    // written (read-only), fails as the daemon's own start would (--state-file, exit 1), not as a
    // refused --log-file never given.
    if (values['log-file'] === undefined)
      await makeDirectory(dirname(options.stateFile))
        .then(() => access(dirname(options.stateFile), constants.W_OK))
        .catch((error: unknown) => {
          throw namingOption('--state-file', options.stateFile, error);
        });
    const logFile = values['log-file'] ?? join(dirname(options.stateFile), `${options.nodeId}.log`);
    // `ps` names the node and its mount, so an operator finds a mount's daemon.
    await daemonize('node', { ...values, daemon: false, 'log-file': logFile }, logFile, ['--node-id', options.nodeId, '--mount', resolve(options.mount)]);
    return 0;
  }
  // Loaded only here: the parent that detaches the daemon (the mount helper) needs no FUSE, ws or driver code.
  const { NodeDaemon } = await import('../node/daemon.js');
  const root = await createLogger({ level: values['log-level'] as string, file: values['log-file'] });
  const { log } = root;
  return serveUntilStopped(
    () => NodeDaemon.start(options, log),
    root,
    (daemon) => void daemon.reload('SIGHUP').catch((error: unknown) => log.error({ err: error }, 'manifest reload failed')),
  );
}
