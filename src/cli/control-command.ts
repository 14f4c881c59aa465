import { readFile } from 'node:fs/promises';
import { CONTROL_DEFAULTS, ControlServer, parseHostPort } from '../control/control-server.js';
import { parseOrigin } from '../control/origins.js';
import { loadSchemas } from '../protocol/schemas.js';
import { UsageError } from './exit.js';
import { createLogger } from './logger.js';
import { STORE_OPTIONS, etcdOptionsFrom, type StoreArgs } from './store-options.js';

export interface ControlArgs extends StoreArgs {
  listen: string;
  'http-listen': string;
  'data-dir': string;
  'offline-grace-ms': number;
  'lease-ttl-ms': number;
  'ping-interval-ms': number;
  'tls-cert'?: string | undefined;
  'tls-key'?: string | undefined;
  'log-level': string;
  'log-file'?: string | undefined;
  'allowed-origin'?: string[] | undefined;
}

/** `acheron control`: runs the server in the foreground until SIGINT/SIGTERM. */
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
  if (!(args['ping-interval-ms'] >= 50)) throw new UsageError(`--ping-interval-ms ${args['ping-interval-ms']}: expected a number of milliseconds, at least 50`);
  if (Boolean(args['tls-cert']) !== Boolean(args['tls-key'])) throw new UsageError('--tls-cert and --tls-key go together');
  const etcd = etcdOptionsFrom(args);
  const tls = args['tls-cert'] && args['tls-key'] ? { cert: await readFile(args['tls-cert']), key: await readFile(args['tls-key']) } : undefined;
  const log = createLogger({ level: args['log-level'], file: args['log-file'] });
  const server = await ControlServer.start({
    listen, httpListen, dataDir: args['data-dir'], offlineGraceMs: args['offline-grace-ms'], leaseTtlMs: args['lease-ttl-ms'], pingIntervalMs: args['ping-interval-ms'],
    log, schemas: await loadSchemas(), allowedOrigins, ...(tls ? { tls } : {}), etcd,
  });
  await new Promise<void>((resolve) => {
    process.once('SIGINT', resolve);
    process.once('SIGTERM', resolve);
  });
  await server.stop();
  log.info('control server stopped');
  return 0;
}

export const CONTROL_OPTIONS = {
  listen: { type: 'string', default: CONTROL_DEFAULTS.listen, describe: 'WebSocket listener host:port' },
  'http-listen': { type: 'string', default: CONTROL_DEFAULTS.httpListen, describe: 'HTTP listener (metrics, health, debug page)' },
  'data-dir': { type: 'string', default: CONTROL_DEFAULTS.dataDir, describe: 'catalog and event history; tokens and projects too with --store file' },
  'offline-grace-ms': { type: 'number', default: CONTROL_DEFAULTS.offlineGraceMs, describe: 'a node whose tunnel stays closed this long turns offline' },
  'lease-ttl-ms': { type: 'number', default: CONTROL_DEFAULTS.leaseTtlMs, describe: 'node lease; nodes refresh every third of it' },
  'ping-interval-ms': { type: 'number', default: CONTROL_DEFAULTS.pingIntervalMs, describe: 'ping every peer this often; one that missed two pongs is dropped (shorter: a silent link is noticed sooner, e.g. in tests)' },
  'tls-cert': { type: 'string', describe: 'PEM certificate (then wss:// and https://)' },
  'tls-key': { type: 'string', describe: 'PEM key' },
  'allowed-origin': { type: 'string', array: true, describe: 'also accept browser (subprotocol) logins from pages of this origin, http[s]://host[:port] (repeatable); the server\'s own listeners are always accepted' },
  'log-level': { type: 'string', default: 'info', describe: 'fatal|error|warn|info|debug|trace|silent' },
  'log-file': { type: 'string', describe: 'log to this file instead of stderr' },
  ...STORE_OPTIONS,
} as const;
