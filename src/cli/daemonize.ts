import { spawn } from 'node:child_process';
import { closeSync } from 'node:fs';
import { Socket } from 'node:net';
import { fileURLToPath } from 'node:url';
import { EXIT_FAILURE, EXIT_OK, failureText } from './exit.js';
import { openLogFile, reopenLogOnHangup, type RootLogger } from './logger.js';

/** The environment variable that carries the resolved options to the detached daemon. */
export const DAEMON_OPTIONS_ENV = 'ACHERON_DAEMON_OPTIONS';
const READY_FD = 3;
const BIN = fileURLToPath(new URL('../../bin/acheron.js', import.meta.url));

/**
 * Starts `acheron <command>` detached, logging to `logFile`, and resolves once it reports ready on
 * fd 3; rejects with its reason if it exits first (the mount helper contract, SPEC §1). `shown`:
 * arguments that only name the daemon in `ps` (which mount it serves; never a secret): it reads its
 * options from the environment and ignores them.
 */
export async function daemonize(command: string, options: unknown, logFile: string, shown: readonly string[] = []): Promise<number> {
  const log = await openLogFile(logFile);
  const child = spawn(process.execPath, [BIN, command, ...shown], {
    detached: true,
    stdio: ['ignore', log, log, 'pipe'],
    env: { ...process.env, [DAEMON_OPTIONS_ENV]: JSON.stringify(options) },
  });
  closeSync(log);
  const channel = child.stdio[READY_FD] as Socket;
  let said = '';
  channel.setEncoding('utf8');
  channel.on('data', (chunk: string) => (said += chunk));
  const outcome = await new Promise<{ ready: boolean; reason: string }>((resolve) => {
    channel.on('data', () => said.includes('ready\n') && resolve({ ready: true, reason: '' }));
    child.once('exit', (code, signal) =>
      resolve({
        ready: false,
        reason: said.replace(/^error: /, '').trim() || `daemon exited (${signal ?? `code ${code}`}) before the tree was live; see ${logFile}`,
      }),
    );
    child.once('error', (error) => resolve({ ready: false, reason: error.message }));
  });
  channel.destroy();
  if (!outcome.ready) throw new Error(outcome.reason);
  child.unref();
  return child.pid ?? 0;
}

/** In the detached daemon: tell the parent how start-up went. A no-op when not daemonized. */
export function reportToParent(message: 'ready' | { error: string }): void {
  if (!process.env[DAEMON_OPTIONS_ENV]) return;
  let socket: Socket;
  try {
    socket = new Socket({ fd: READY_FD, readable: false, writable: true });
  } catch {
    // No parent's pipe there (the variable came from elsewhere: fd 3 closed, or a file): nobody waits to hear it.
    return;
  }
  socket.on('error', () => undefined);
  socket.end(message === 'ready' ? 'ready\n' : `error: ${message.error}\n`);
}

/** What serveUntilStopped needs of a daemon (NodeDaemon, WorldDaemon). */
interface ServingDaemon {
  readonly done: Promise<void>;
  stop(reason: string): Promise<void>;
  /**
   * A daemon whose stop waits for running work (the node's shutdown grace): stop without that wait.
   * True when it cut the wait short; false when there was none left (the stop is past it).
   */
  forceStop?(reason: string): boolean;
  /** After `done`: the stop lost something it should have kept (the node's state on a full disk). */
  readonly unclean?: boolean;
}

/**
 * The foreground life of `acheron node` and `acheron world`: start, tell a waiting parent how that
 * went (daemonized or mount helper), stop on SIGINT or SIGTERM, and return 0 once stopped. A second
 * signal forces the stop of a daemon that has forceStop (users expect a second Ctrl-C to stop at
 * once), and if that cut its grace short the exit is 1, as when the stop lost state (`unclean`). A SIGHUP (the terminal closed, or `kill
 * -HUP` meant as a reload) never ends it: unhandled, it killed the process at once, without its
 * unmount, its locks left. It reopens --log-file first (log rotation); then, once the daemon is live,
 * `onHangup` takes it (the node reloads its manifests, WorldFS logs it); before, it is logged.
 */
export async function serveUntilStopped<T extends ServingDaemon>(start: () => Promise<T>, root: RootLogger, onHangup: (daemon: T) => void): Promise<number> {
  let live: T | undefined;
  reopenLogOnHangup(root, () => (live ? onHangup(live) : root.log.info('SIGHUP while starting: nothing to reload yet; still starting')));
  let daemon: T;
  try {
    daemon = await start();
  } catch (error) {
    // With its wire code, as the foreground command would print it.
    reportToParent({ error: failureText(error) });
    throw error;
  }
  let signalled = false;
  let forced = false;
  const onSignal = (signal: NodeJS.Signals): void => {
    if (!signalled) {
      signalled = true;
      void daemon.stop(signal);
    } else if (daemon.forceStop?.(signal)) {
      forced = true;
    }
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  live = daemon;
  reportToParent('ready');
  await daemon.done;
  root.log.flush();
  return forced || daemon.unclean ? EXIT_FAILURE : EXIT_OK;
}
