import { join } from 'node:path';
import type { Logger } from 'pino';
import type { EtcdOptions } from './etcd/options.js';
import { FileProjectStore } from './file-project-store.js';
import { FileTokenStore } from './file-token-store.js';
import type { ProjectStore } from './projects.js';
import type { TokenStore } from './token-store.js';

/**
 * The storage seam of the control server (issue 11): everything it keeps goes through one object,
 * and request handling, policy and the watch machinery see only these interfaces, never whether
 * files or etcd are underneath. Built so far: tokens and projects. The catalog and the event stream
 * still live in the data dir on both stores.
 *
 * Phase 2 adds, on the same object (sketch; see docs/control-protocol.md "Storage"):
 *   nodes:   NodeStore    get/list (sync, from memory), join(payload) → {node_id, secret},
 *                         upsert(nodeId, services) → {delta, event} as ONE guarded write of the node
 *                         record and its event, verify(nodeId, secret), delete(nodeId)
 *   events:  EventStream  head(): seq; replay(sinceSeq) → events | resync_required;
 *                         follow(fromSeq, onEvent) in seq order (file: the ndjson log + ring;
 *                         etcd: seq = the revision of the write that made the event)
 *   leases:  LeaseStore   refresh(nodeId), shortenTo(nodeId, graceMs), expired() → node ids, on
 *                         every server (etcd: lease deadlines as values, swept by the leader)
 *   servers: ServerRegistry  this server's id and relay address under an etcd lease; which server
 *                         holds each node's tunnel (for relays across servers)
 */
export interface ControlStore {
  /** Where things live, for the start-up log line. */
  readonly description: string;
  readonly tokens: TokenStore;
  readonly projects: ProjectStore;
  /** Why the store cannot serve right now (for /readyz), or undefined when it can. */
  problem(): Promise<string | undefined>;
  close(): Promise<void>;
}

export interface StoreOptions {
  dataDir: string;
  /** Tokens and projects in etcd rather than in the data dir. */
  etcd?: EtcdOptions | undefined;
}

/** Opens the server's store: files in the data dir, or etcd (checked: unreachable → an error naming the endpoints). */
export async function openControlStore(options: StoreOptions, log: Logger): Promise<ControlStore> {
  if (!options.etcd) {
    const tokens = await FileTokenStore.open(options.dataDir, log.child({ component: 'tokens' }));
    const projects = await FileProjectStore.open(join(options.dataDir, 'projects.journal'), log.child({ component: 'projects' }));
    return {
      description: `files in ${options.dataDir}`,
      tokens,
      projects,
      problem: async () => undefined,
      close: async () => {
        await tokens.close();
        await projects.close();
      },
    };
  }
  const etcd = options.etcd;
  const { EtcdConnection, EtcdProjectStore, EtcdTokenStore } = await loadEtcd();
  const connection = await EtcdConnection.open(etcd, log.child({ component: 'etcd' }));
  try {
    const tokens = new EtcdTokenStore(connection);
    const projects = await EtcdProjectStore.open(connection, etcd.callTimeoutMs);
    if (!(await tokens.list()).some((t) => t.role === 'admin')) {
      log.warn({ prefix: etcd.prefix }, `no admin token in etcd yet: make one with acheron token rotate admin --store etcd --etcd-endpoints ${etcd.endpoints.join(',')} --etcd-prefix ${etcd.prefix}`);
    }
    return {
      description: `etcd at ${etcd.endpoints.join(',')} under ${etcd.prefix}`,
      tokens,
      projects,
      problem: async () => {
        try {
          await connection.read('readiness check', (client) => client.get(etcd.prefix).exec());
          return undefined;
        } catch (error) {
          return (error as Error).message;
        }
      },
      close: async () => {
        await tokens.close();
        await projects.close();
        connection.close();
      },
    };
  } catch (error) {
    connection.close();
    throw error;
  }
}

/** The token part alone, for `acheron token` (which must not open the server's project journal). */
export async function openTokenStore(options: StoreOptions, log: Logger): Promise<TokenStore> {
  if (!options.etcd) return FileTokenStore.open(options.dataDir);
  const { EtcdConnection, EtcdTokenStore } = await loadEtcd();
  return new EtcdTokenStore(await EtcdConnection.open(options.etcd, log), { ownsConnection: true });
}

/** etcd3 (gRPC, protobufs) loads only for `--store etcd`: every other command starts without it. */
function loadEtcd(): Promise<typeof import('./etcd/index.js')> {
  return import('./etcd/index.js');
}
