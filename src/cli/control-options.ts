import { CONTROL_DEFAULTS, SERVER_TTL_MS } from '../control/defaults.js';
import { STORE_OPTIONS, type StoreArgs } from './store-options.js';
import { wholeNumberFlag } from './whole-number.js';
import { LOG_OPTIONS } from './log-options.js';

const ms = (flag: string, min: number) => wholeNumberFlag(flag, { min, unit: 'milliseconds' });

/** `acheron control` options (yargs), apart from the command: every command line reads them, few run the server. */
export const CONTROL_OPTIONS = {
  listen: { type: 'string', default: CONTROL_DEFAULTS.listen, describe: 'WebSocket listener host:port' },
  'http-listen': { type: 'string', default: CONTROL_DEFAULTS.httpListen, describe: 'HTTP listener (metrics, health, debug page)' },
  'data-dir': { type: 'string', default: CONTROL_DEFAULTS.dataDir, describe: 'catalog and event history; tokens and projects too with --store file' },
  'offline-grace-ms': {
    ...ms('offline-grace-ms', 0),
    default: CONTROL_DEFAULTS.offlineGraceMs,
    describe: 'a node whose tunnel stays closed this long turns offline',
  },
  'lease-ttl-ms': { ...ms('lease-ttl-ms', 1000), default: CONTROL_DEFAULTS.leaseTtlMs, describe: 'node lease; nodes refresh every third of it' },
  'ping-interval-ms': {
    ...ms('ping-interval-ms', 50),
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
    describe:
      "this server's id among the servers of one store (metrics label server_id; etcd registration; one running server's); default <hostname>:<listen host>:<port>, <hostname>:<port> for 0.0.0.0",
  },
  'server-ttl-ms': {
    // etcd leases count whole seconds.
    ...ms('server-ttl-ms', 1000),
    default: SERVER_TTL_MS,
    describe: "etcd store: the other servers notice this server is gone this long after it died (its registration lapses; its nodes' grace periods start then)",
  },
  'advertise-url': {
    type: 'string',
    describe:
      'etcd store: where the other servers reach this one to relay to the node tunnels it holds (default ws[s]://<--listen host, or the host name for 0.0.0.0>:<port>)',
  },
  ...LOG_OPTIONS,
  ...STORE_OPTIONS,
} as const;

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
