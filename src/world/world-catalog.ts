import type { Logger } from 'pino';
import { ControlClient } from '../protocol/control-client.js';
import type { ServerFrame } from '../protocol/envelope.js';
import { ProtocolError } from '../protocol/errors.js';
import { randomUUID } from 'node:crypto';
import type { CatalogEventPayload } from '../protocol/catalog-event.js';
import { RELAY_WAIT_MS, type RelayOutcome } from '../protocol/relay.js';
import type { NodeLabels, NodePlatform, RelayPayload, ServiceDescriptor } from '../protocol/types.gen.js';
import { FsError, isErrnoName } from '../errors/errno.js';

/** How much longer than a relay's own bound the mount waits for the server's answer. */
const REPLY_SLACK_MS = 5000;

/** One node as the control server describes it (node_get, and the events' payload). */
export interface WorldNode {
  node_id: string;
  node_name: string;
  platform: NodePlatform;
  labels: NodeLabels;
  services: ServiceDescriptor[];
  state: 'online' | 'offline';
  lease_expires_at_ms: number;
  last_seen_ms: number;
  joined_at_ms: number;
  updated_ms: number;
}

/** What `control.session_attach` says this session may do: `allowed` or the refusal. */
export interface SessionGrant {
  has_project_token: boolean;
  actions: Record<string, string>;
}

export interface WorldCatalogOptions {
  url: string;
  token: string;
  /** Attaches the project session on every new connection (users); resolves to its grant. */
  attach?: (client: ControlClient) => Promise<SessionGrant>;
  log: Logger;
  backoffMs?: number;
  backoffMaxMs?: number;
  /** Lease and last-seen times are not events: they are re-read this often. */
  refreshMs?: number;
}

/**
 * The catalog a WorldFS mount shows, kept current from the control server (SPEC §9): the mount is
 * itself a watcher. On every connection it starts a watch first and then reads the whole catalog;
 * events that arrive meanwhile are applied after the read, in seq order, and every event carries
 * its node's whole catalog, so the result is current whatever the interleaving. While the
 * connection is down, `connected` is false (reads fail with ENOTCONN) and it reconnects with
 * backoff; each reconnect reads everything again.
 */
export class WorldCatalog {
  readonly #options: WorldCatalogOptions;
  #nodes = new Map<string, WorldNode>();
  #client: ControlClient | undefined;
  #grant: SessionGrant | undefined;
  #connected = false;
  #stopped = false;
  #changedMs = Date.now();
  #lastError = 'not connected yet';
  #wake: (() => void) | undefined;
  #running: Promise<void> | undefined;
  #firstSync: Promise<void>;
  #everSynced = false;
  #synced!: () => void;

  constructor(options: WorldCatalogOptions) {
    this.#options = options;
    this.#firstSync = new Promise((resolve) => (this.#synced = resolve));
  }

  get connected(): boolean {
    return this.#connected;
  }

  /** Why the catalog is not available now (for ENOTCONN messages and logs). */
  get lastError(): string {
    return this.#lastError;
  }

  get changedMs(): number {
    return this.#changedMs;
  }

  /** The project session's grant, or undefined for an admin token (sees everything). */
  get grant(): SessionGrant | undefined {
    return this.#grant;
  }

  nodeIds(): string[] {
    return [...this.#nodes.keys()].sort();
  }

  node(nodeId: string): WorldNode | undefined {
    return this.#nodes.get(nodeId);
  }

  /**
   * One operation on a node's tree, relayed through the control server (SPEC §9). ENOTCONN at once
   * while the control server is out of reach, EHOSTUNREACH at once when the node is offline;
   * otherwise the node's own errno, by name. Never retried: at most once. Bounded: the server
   * answers ETIMEDOUT after `timeout_ms` (default RELAY_WAIT_MS); a server silent for
   * REPLY_SLACK_MS longer gets ETIMEDOUT here.
   */
  async relay(nodeId: string, operation: Omit<RelayPayload, 'node_id' | 'request_id'> & { request_id?: string }): Promise<Record<string, unknown>> {
    const client = this.#client;
    if (!this.#connected || !client) throw new FsError('ENOTCONN', `the control server is out of reach: ${this.#lastError}`);
    if (this.#nodes.get(nodeId)?.state === 'offline') throw new FsError('EHOSTUNREACH', `node ${nodeId} is offline`);
    let outcome: RelayOutcome;
    try {
      outcome = await client.request<RelayOutcome>('control.relay', { node_id: nodeId, request_id: randomUUID(), ...operation }, (operation.timeout_ms ?? RELAY_WAIT_MS) + REPLY_SLACK_MS);
    } catch (error) {
      if (error instanceof ProtocolError && error.code === 'unavailable') throw new FsError(client.isOpen ? 'ETIMEDOUT' : 'ENOTCONN', `${operation.op} ${operation.path}: ${error.message}`);
      throw error;
    }
    if (outcome.ok) return outcome.result ?? {};
    const message = outcome.message ?? `${operation.op} ${operation.path} failed on node ${nodeId}`;
    // A name the adapter knows as an errno still comes out unchanged (errno.ts maps any `code`).
    if (isErrnoName(outcome.errno)) throw new FsError(outcome.errno, message);
    throw Object.assign(new Error(message), { code: outcome.errno ?? 'EIO' });
  }

  /**
   * Connects and keeps the catalog current. Resolves after the first full read; rejects when that
   * fails (bad token, project refused, server out of reach). Later disconnects are retried.
   */
  start(): Promise<void> {
    this.#running ??= this.#loop();
    return Promise.race([this.#firstSync, this.#running]);
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    this.#wake?.();
    this.#client?.terminate();
    await this.#running?.catch(() => undefined);
  }

  async #loop(): Promise<void> {
    const first = this.#options.backoffMs ?? 500;
    let delay = first;
    while (!this.#stopped) {
      try {
        await this.#session();
        delay = first;
      } catch (error) {
        this.#lastError = error instanceof ProtocolError ? `${error.code}: ${error.message}` : (error as Error).message;
        this.#options.log.warn({ err: error }, 'control server connection failed');
        // The mount goes live only on a first full read (SPEC §1): a first failure is start()'s.
        if (!this.#everSynced) throw error;
      }
      this.#connected = false;
      this.#changedMs = Date.now();
      if (this.#stopped) break;
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, delay * (0.5 + Math.random() / 2));
        this.#wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
      delay = Math.min(delay * 2, this.#options.backoffMaxMs ?? 10_000);
    }
  }

  /** One connection, from connect to close. */
  async #session(): Promise<void> {
    let buffered: CatalogEventPayload[] | undefined = [];
    const client = await ControlClient.connect({
      url: this.#options.url,
      token: this.#options.token,
      onPush: (frame: ServerFrame) => {
        if (frame.ok && frame.type === 'control.node_service_event') {
          const event = frame.payload as CatalogEventPayload;
          if (buffered) buffered.push(event);
          else this.#apply(event);
        } else if (!frame.ok && frame.error.code === 'resync_required') {
          // Fell behind: read everything again on a new connection.
          this.#lastError = `resync_required: ${frame.error.message}`;
          client.terminate();
        }
      },
    });
    this.#client = client;
    try {
      this.#grant = await this.#options.attach?.(client);
      await client.request('control.node_service_watch', { replay_limit: 0, purpose: 'worldfs' });
      const listed = await client.request<{ nodes: Array<{ node_id: string }> }>('control.node_list');
      const nodes = await Promise.all(listed.nodes.map((n) => client.request<WorldNode>('control.node_get', { node_id: n.node_id }).catch(() => undefined)));
      this.#nodes = new Map(nodes.filter((n): n is WorldNode => n !== undefined).map((n) => [n.node_id, n]));
      for (const event of buffered) this.#apply(event);
      buffered = undefined;
      this.#connected = true;
      this.#changedMs = Date.now();
      this.#options.log.info({ nodes: this.#nodes.size }, 'catalog read; following events');
      this.#everSynced = true;
      this.#synced();
      const refresh = setInterval(() => void this.#refreshLeases(client), this.#options.refreshMs ?? 5000);
      try {
        await client.closed;
      } finally {
        clearInterval(refresh);
      }
      this.#lastError = 'the connection to the control server closed';
    } finally {
      client.terminate();
      this.#client = undefined;
    }
  }

  #apply(event: CatalogEventPayload): void {
    this.#changedMs = Date.now();
    if (event.kind === 'delete') {
      this.#nodes.delete(event.node_id);
      return;
    }
    const known = this.#nodes.get(event.node_id);
    this.#nodes.set(event.node_id, {
      lease_expires_at_ms: known?.lease_expires_at_ms ?? 0,
      last_seen_ms: known?.last_seen_ms ?? event.timestamp_ms,
      joined_at_ms: known?.joined_at_ms ?? event.timestamp_ms,
      node_id: event.node_id,
      node_name: event.node_name,
      platform: event.platform,
      labels: event.labels,
      services: event.services,
      state: event.kind === 'offline' ? 'offline' : 'online',
      updated_ms: event.timestamp_ms,
    });
  }

  /** Only the times: state and services come from events, which are ordered; a list may be older. */
  async #refreshLeases(client: ControlClient): Promise<void> {
    try {
      const { nodes } = await client.request<{ nodes: Array<Pick<WorldNode, 'node_id' | 'lease_expires_at_ms' | 'last_seen_ms'>> }>('control.node_list');
      for (const listed of nodes) {
        const node = this.#nodes.get(listed.node_id);
        if (node) Object.assign(node, { lease_expires_at_ms: listed.lease_expires_at_ms, last_seen_ms: listed.last_seen_ms });
      }
    } catch {
      // The connection is going down; the next one reads everything again.
    }
  }
}
