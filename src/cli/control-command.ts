import { createSecureContext } from 'node:tls';
import { ControlServer, parseHostPort } from '../control/control-server.js';
import { parseOrigin } from '../control/origins.js';
import { SERVER_ID_PATTERN } from '../control/listeners.js';
import { loadSchemas } from '../protocol/schemas.js';
import { makeDirectory, removeMadeDirectories } from '../store/make-directory.js';
import { UsageError } from './exit.js';
import { readOptionFile } from './option-file.js';
import { createLogger, reopenLogOnHangup } from './logger.js';
import type { ControlArgs } from './control-options.js';
import { etcdStoreOptions } from './store-options.js';

/** `acheron control`: runs the server in the foreground until SIGINT/SIGTERM; SIGHUP reopens --log-file and is logged. */
export async function runControlCommand(args: ControlArgs): Promise<number> {
  let listen;
  let httpListen;
  let allowedOrigins;
  try {
    listen = parseHostPort(args.listen, '--listen');
    httpListen = parseHostPort(args['http-listen'], '--http-listen');
    allowedOrigins = (args['allowed-origin'] ?? []).map((origin) => parseOrigin(origin, '--allowed-origin'));
  } catch (error) {
    throw new UsageError((error as Error).message);
  }
  if (Boolean(args['tls-cert']) !== Boolean(args['tls-key'])) throw new UsageError('--tls-cert and --tls-key go together');
  if (args['advertise-url'] !== undefined && !/^wss?:\/\/[^/\s]+$/.test(args['advertise-url']))
    throw new UsageError(`--advertise-url ${JSON.stringify(args['advertise-url'])}: expected ws://host:port or wss://host:port`);
  if (args['server-id'] !== undefined && !SERVER_ID_PATTERN.test(args['server-id']))
    throw new UsageError(`--server-id ${JSON.stringify(args['server-id'])}: expected letters, digits, '.', '_', '-' or ':' (1-128)`);
  const etcd = await etcdStoreOptions(args);
  const tls =
    args['tls-cert'] && args['tls-key']
      ? checkedTls(args['tls-cert'], args['tls-key'], await readOptionFile('--tls-cert', args['tls-cert']), await readOptionFile('--tls-key', args['tls-key']))
      : undefined;
  let madeDirs: string[] = [];
  if (!etcd) {
    try {
      madeDirs = await makeDirectory(args['data-dir'], 0o700);
    } catch (error) {
      throw new UsageError(`--data-dir ${args['data-dir']}: ${(error as Error).message}`);
    }
  }
  // After the data dir (a log file may go in it, which must not make it with the log's mode); a bad one leaves none made.
  const root = await createLogger({ level: args['log-level'], file: args['log-file'] }).catch(async (error: unknown) => {
    await removeMadeDirectories(madeDirs).catch(() => undefined);
    throw error;
  });
  const { log } = root;
  const server = await ControlServer.start({
    listen,
    httpListen,
    dataDir: args['data-dir'],
    offlineGraceMs: args['offline-grace-ms'],
    leaseTtlMs: args['lease-ttl-ms'],
    pingIntervalMs: args['ping-interval-ms'],
    log,
    schemas: await loadSchemas(),
    allowedOrigins,
    ...(tls ? { tls } : {}),
    etcd,
    serverId: args['server-id'],
    serverTtlMs: args['server-ttl-ms'],
    advertiseUrl: args['advertise-url'],
  }).catch(async (error: unknown) => {
    // Made for this start alone: a start that fails (a port in use) leaves no directory behind.
    await removeMadeDirectories(madeDirs).catch((cleanup: unknown) => log.warn({ err: cleanup }, 'could not remove the data dir this failed start made'));
    throw error;
  });
  // Unhandled, a SIGHUP (a closed terminal, or a reload as the node daemon takes it) would end the
  // server without its stop, leaving its pid lock; there is nothing to reload but the log file: it follows its token store.
  reopenLogOnHangup(root, () => log.info('SIGHUP: nothing to reload (changes to tokens count at once); still running'));
  await new Promise<void>((resolve) => {
    process.once('SIGINT', resolve);
    process.once('SIGTERM', resolve);
  });
  await server.stop();
  log.info('control server stopped');
  return 0;
}

/**
 * The certificate and key as TLS will take them, or a usage error naming both files: the server
 * would otherwise fail at its start with OpenSSL's text alone (`PEM routines::no start line`).
 */
function checkedTls(certFile: string, keyFile: string, cert: string, key: string): { cert: string; key: string } {
  try {
    createSecureContext({ cert, key });
  } catch (error) {
    throw new UsageError(`--tls-cert ${certFile} --tls-key ${keyFile}: not a PEM certificate and its private key (${(error as Error).message})`);
  }
  return { cert, key };
}
