import { readFile } from 'node:fs/promises';
import { CONTROL_DEFAULTS, ControlServer, parseHostPort } from '../control/control-server.js';
import { SERVER_TTL_MS } from '../control/control-store.js';
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
  'server-id'?: string | undefined;
  'server-ttl-ms': number;
  'advertise-url'?: string | undefined;
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
  if (!(Number.isInteger(args['server-ttl-ms']) && args['server-ttl-ms'] >= 1000))
    throw new UsageError(`--server-ttl-ms ${args['server-ttl-ms']}: expected a whole number of milliseconds, at least 1000 (etcd leases count seconds)`);
  if (args['advertise-url'] !== undefined && !/^wss?:\/\/[^/\s]+$/.test(args['advertise-url']))
    throw new UsageError(`--advertise-url ${JSON.stringify(args['advertise-url'])}: expected ws://host:port or wss://host:port`);
  if (args['server-id'] !== undefined && !/^[A-Za-z0-9._:-]{1,128}$/.test(args['server-id']))
    throw new UsageError(`--server-id ${JSON.stringify(args['server-id'])}: expected letters, digits, '.', '_', '-' or ':' (1-128)`);
  const etcd = etcdOptionsFrom(args);
  const tls = args['tls-cert'] && args['tls-key'] ? { cert: await readFile(args['tls-cert']), key: await readFile(args['tls-key']) } : undefined;
  const log = createLogger({ level: args['log-level'], file: args['log-file'] });
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
  'ping-interval-ms': {
    type: 'number',
    default: CONTROL_DEFAULTS.pingIntervalMs,
    describe: 'ping every peer this often; one that missed two pongs is dropped (shorter: a silent link is noticed sooner, e.g. in tests)',
  },
  'tls-cert': { type: 'string', describe: 'PEM certificate (then wss:// and https://)' },
  'tls-key': { type: 'string', describe: 'PEM key' },
  'allowed-origin': {
    type: 'string',
    array: true,
    describe:
      "also accept browser (subprotocol) logins from pages of this origin, http[s]://host[:port] (repeatable); the server's own listeners are always accepted",
  },
  'server-id': {
    type: 'string',
    describe: "this server's id among the servers of one store (metrics label server_id; etcd registration); default <hostname>:<listen port>",
  },
  'server-ttl-ms': {
    type: 'number',
    default: SERVER_TTL_MS,
    describe: "etcd store: the other servers notice this server is gone this long after it died (its registration lapses; its nodes' grace periods start then)",
  },
  'advertise-url': {
    type: 'string',
    describe:
      'etcd store: where the other servers reach this one to relay to the node tunnels it holds (default ws[s]://<--listen host, or the host name for 0.0.0.0>:<port>)',
  },
  'log-level': { type: 'string', default: 'info', describe: 'fatal|error|warn|info|debug|trace|silent' },
  'log-file': { type: 'string', describe: 'log to this file instead of stderr' },
  ...STORE_OPTIONS,
} as const;
