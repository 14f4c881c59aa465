import { realpath } from 'node:fs/promises';
import { join } from 'node:path';
import type { Logger } from 'pino';
import type { CatalogStore, EventStream } from './catalog-store.js';
import type { EtcdOptions } from './etcd/options.js';
import { EventLog } from './event-log.js';
import { RING_CAPACITY } from './event-ring.js';
import { SERVER_TTL_MS } from './defaults.js';
import { aloneDirectory, type ServerDirectory } from './server-directory.js';
import { closeAll, closeAndThrow, OpenedParts, type Closable } from '../store/closing.js';
import { makeDirectory, namingOption } from '../store/make-directory.js';
import { PidLock, pidLockPath } from '../store/pid-lock.js';
import { FileCatalog } from './file-catalog.js';
import { FileProjectStore } from './file-project-store.js';
import { FileTokenStore } from './file-token-store.js';
import type { ProjectStore } from './projects.js';
import type { TokenStore } from './token-store.js';

/**
 * The storage seam of the control server (issue 11): everything it keeps goes through one object,
 * and request handling, policy, relays and the watch machinery see only these interfaces, never
 * whether files or etcd are underneath: tokens, projects, the catalog with its leases, and the
 * event stream (docs/control-protocol.md "Storage").
 */
export interface ControlStore {
  /** Where things live, for the start-up log line. */
  readonly description: string;
  readonly tokens: TokenStore;
  readonly projects: ProjectStore;
  readonly catalog: CatalogStore;
  readonly events: EventStream;
  /** The servers of the store (one on files), for relays to node tunnels held elsewhere. */
  readonly servers: ServerDirectory;
  /** Why the store cannot serve right now (for /readyz), or undefined when it can. */
  problem(): Promise<string | undefined>;
  close(): Promise<void>;
}

export interface CatalogOptions {
  leaseTtlMs: number;
  offlineGraceMs: number;
  /** Event history settings (the file store's files; the replay ring on both); defaults from the ACHERON_NODE_SERVICE_EVENT_LOG_* variables. */
  eventLog?: { ringCapacity?: number; rotateMaxBytes?: number; archiveKeep?: number };
  /** etcd: a server that dies is noticed by the others this long after (its registration's etcd lease, whole seconds). */
  serverTtlMs?: number | undefined;
}

/**
 * etcd: how long a change waits for this server's own watch to show it before answering anyway (it
 * is committed), and a resume for a seq another server delivered: milliseconds normally, seconds
 * only on an overloaded machine; a node's next request after its join must find the join here.
 */
const WATCH_WAIT_MS = 5_000;

/** How long /readyz waits for etcd: within a probe's usual 1–3 s timeout, so a probe gets the 503 and its reason. */
const READINESS_WITHIN_MS = 1_000;

export interface StoreOptions {
  dataDir: string;
  /** Everything in etcd rather than in the data dir. */
  etcd?: EtcdOptions | undefined;
  /** This server's id (etcd: its registration, and the owner of its nodes' tunnels). */
  serverId: string;
  /** Where the other servers reach this one (etcd: in its registration). */
  advertiseUrl: string;
  /** It is an address this process listens on (see ServerRegistrationOptions). */
  advertiseUrlIsBound: boolean;
  catalog: CatalogOptions;
}

/** Opens the server's store: files in the data dir, or etcd (checked: unreachable → an error naming the endpoints). */
export async function openControlStore(options: StoreOptions, log: Logger): Promise<ControlStore> {
  if (!options.etcd) return openFileStore(options, log);
  const etcd = options.etcd;
  const { EtcdConnection, EtcdProjectStore, EtcdTokenStore, EtcdCatalog } = await loadEtcd();
  const connection = await EtcdConnection.open(etcd, log.child({ component: 'etcd' }));
  const opened = new OpenedParts();
  opened.keep({ close: async () => connection.close() });
  try {
    const tokens = opened.keep(new EtcdTokenStore(connection));
    const projects = opened.keep(await EtcdProjectStore.open(connection, etcd.callTimeoutMs));
    const catalog = await EtcdCatalog.open(connection, {
      leaseTtlMs: options.catalog.leaseTtlMs,
      offlineGraceMs: options.catalog.offlineGraceMs,
      serverTtlMs: options.catalog.serverTtlMs ?? SERVER_TTL_MS,
      ringCapacity: options.catalog.eventLog?.ringCapacity ?? RING_CAPACITY,
      serverId: options.serverId,
      advertiseUrl: options.advertiseUrl,
      advertiseUrlIsBound: options.advertiseUrlIsBound,
      waitMs: WATCH_WAIT_MS,
      startTimeoutMs: etcd.startTimeoutMs,
      log: log.child({ component: 'catalog' }),
    });
    opened.keep(catalog);
    if (!(await tokens.list()).some((t) => t.role === 'admin')) {
      log.warn(
        { prefix: etcd.prefix },
        `no admin token in etcd yet: make one with acheron token rotate admin --store etcd --etcd-endpoints ${etcd.endpoints.join(',')} --etcd-prefix ${etcd.prefix}`,
      );
    }
    return {
      description: `etcd at ${etcd.endpoints.join(',')} under ${etcd.prefix} (server ${options.serverId})`,
      tokens,
      projects,
      catalog,
      events: catalog.events,
      servers: catalog.servers,
      problem: async () => (await connection.problem(READINESS_WITHIN_MS)) ?? catalog.problem(),
      close: () => opened.close(),
    };
  } catch (error) {
    return closeAndThrow(opened, error);
  }
}

async function openFileStore(options: StoreOptions, log: Logger): Promise<ControlStore> {
  // Before anything is opened: a bad value is an error with nothing to close.
  const eventLog = { ...eventLogFromEnv(), ...options.catalog.eventLog };
  const opened = new OpenedParts();
  try {
    const lock = opened.keep(await lockDataDir(options.dataDir));
    const tokens = opened.keep(await FileTokenStore.open(options.dataDir, log.child({ component: 'tokens' })));
    const projects = opened.keep(await FileProjectStore.open(join(options.dataDir, 'projects.journal'), log.child({ component: 'projects' })));
    const events = opened.keep(await EventLog.open({ dir: options.dataDir, log: log.child({ component: 'events' }), ...eventLog }));
    const catalog = await FileCatalog.open(join(options.dataDir, 'catalog.journal'), events, {
      leaseTtlMs: options.catalog.leaseTtlMs,
      offlineGraceMs: options.catalog.offlineGraceMs,
      log: log.child({ component: 'catalog' }),
    });
    return {
      description: `files in ${options.dataDir}`,
      tokens,
      projects,
      catalog,
      events,
      servers: aloneDirectory(options.serverId),
      // While the last attempt to make a change durable failed and a probe of its size fails too (a full disk): the next change would.
      problem: async () => (await events.durabilityProblem()) ?? (await catalog.durabilityProblem()) ?? (await projects.durabilityProblem()),
      // The log first: archiving a rotated file may still need the catalog's checkpoint.
      close: () => closeAll([events, catalog, tokens, projects, lock]),
    };
  } catch (error) {
    // A system error in the data dir (EROFS, EACCES) names the option that chose it, as one making it does.
    const system = (error as NodeJS.ErrnoException).syscall !== undefined;
    return closeAndThrow(opened, system ? namingOption('--data-dir', options.dataDir, error) : error);
  }
}

/**
 * One server per data dir: two would each keep a catalog and a seq counter of their own over the
 * same journals (the event log got one seq twice; each server lacked the other's nodes), and one's
 * compaction would leave the other appending to a replaced file. Keyed by the directory's real path,
 * so two spellings of it meet the same lock; released when the store closes.
 */
async function lockDataDir(dataDir: string): Promise<Closable> {
  await makeDirectory(dataDir, 0o700);
  const path = await realpath(dataDir);
  const lock = await PidLock.acquire(pidLockPath('control', path), { name: path, heldAs: 'used', otherwise: 'pick another --data-dir' });
  return { close: () => lock.release() };
}

/** SPEC §6 Event history: the environment sets rotation and retention. */
function eventLogFromEnv(env: NodeJS.ProcessEnv = process.env): { rotateMaxBytes?: number; archiveKeep?: number } {
  const number = (name: string): number | undefined => {
    const raw = env[name];
    if (raw === undefined || raw === '') return undefined;
    const value = Number(raw);
    if (!Number.isInteger(value) || value < 0) throw new TypeError(`${name}=${raw}: expected a non-negative integer`);
    return value;
  };
  const rotateMaxBytes = number('ACHERON_NODE_SERVICE_EVENT_LOG_ROTATE_MAX_BYTES');
  const archiveKeep = number('ACHERON_NODE_SERVICE_EVENT_LOG_ARCHIVE_KEEP');
  return { ...(rotateMaxBytes === undefined ? {} : { rotateMaxBytes }), ...(archiveKeep === undefined ? {} : { archiveKeep }) };
}

/** The token part alone, for `acheron token` (which must not open the server's project journal), on the file as the server made it. */
export async function openTokenStore(options: Pick<StoreOptions, 'dataDir' | 'etcd'>, log: Logger): Promise<TokenStore> {
  if (!options.etcd) return FileTokenStore.existing(options.dataDir);
  const { EtcdConnection, EtcdTokenStore } = await loadEtcd();
  return new EtcdTokenStore(await EtcdConnection.open(options.etcd, log), { ownsConnection: true });
}

/** etcd3 (gRPC, protobufs) loads only for `--store etcd`: every other command starts without it. */
function loadEtcd(): Promise<typeof import('./etcd/index.js')> {
  return import('./etcd/index.js');
}
