import type { Lease } from 'etcd3';
import type { Logger } from 'pino';
import { ProtocolError } from '../../protocol/errors.js';
import { hashSecret } from '../node-record.js';
import { newPeerSecret, type PeerServer, type ServerDirectory } from '../server-directory.js';
import { sameSecret } from '../token-store.js';
import type { CatalogFeed } from './catalog-feed.js';
import { encodeTunnel, RETRY_MS, SERVERS, TUNNELS } from './catalog-layout.js';
import type { CatalogMirror } from './catalog-mirror.js';
import type { EtcdConnection } from './connection.js';
import { rescueKeepalives } from './keepalive-rescue.js';

export interface ServerRegistrationOptions {
  /** Where the other servers reach this one (its WebSocket listener), for relays to the node tunnels it holds. */
  advertiseUrl: string;
  /**
   * The advertise URL is an address this process has bound (`--listen`, not a wildcard, no
   * `--advertise-url`): a registration naming it can only be a previous run's, taken over at once.
   */
  advertiseUrlIsBound: boolean;
  /** This server's id: `servers/<id>` and the owner of its nodes' `tunnels/<node_id>`. */
  serverId: string;
  /** The registration's etcd lease: a server that dies is noticed by the others this long after (whole seconds). */
  serverTtlMs: number;
  /** How long a write waits for this server's watch to show it (it is committed either way). */
  waitMs: number;
  log: Logger;
}

/** What the registration needs of the catalog around it. */
export interface RegistrationContext {
  connection: EtcdConnection;
  mirror: CatalogMirror;
  feed: CatalogFeed;
  startedMs: number;
  isClosed: () => boolean;
  /** A tunnel this server closed had no key left to remove (another server's sweep, a lapsed registration): its grace period is due. */
  tunnelGone: (nodeId: string) => void;
  /** Registered again after the registration lapsed, with the node's tunnel still here (`answers`: whether its peer answers a ping): the others may have cut its lease or turned it offline meanwhile. */
  heldThroughLapse: (nodeId: string, answers: () => Promise<boolean>) => void;
}

/**
 * This server among the others on the prefix: `servers/<id>` and the `tunnels/<node_id>` of the
 * nodes connected here, under one etcd lease (kept alive by etcd3; registered again when lost), and
 * where the other servers and their tunnels are, as the relay asks (`ServerDirectory`).
 */
export class ServerRegistration implements ServerDirectory {
  readonly serverId: string;
  readonly shared = true;
  readonly peerToken: string;
  #peerSecret = newPeerSecret();
  #options: ServerRegistrationOptions;
  #context: RegistrationContext;
  #log: Logger;
  #lease: Lease | undefined;
  #problem: string | undefined;
  /** The loop registering this server again after its registration was lost, while it runs. */
  #reregistering: Promise<void> | undefined;
  /** Nodes whose tunnel is on this server, and whether that tunnel's peer answers a ping. */
  #ownTunnels = new Map<string, () => Promise<boolean>>();

  constructor(options: ServerRegistrationOptions, context: RegistrationContext) {
    this.#options = options;
    this.#context = context;
    this.#log = options.log;
    this.serverId = options.serverId;
    this.peerToken = `server.${options.serverId}.${this.#peerSecret}`;
  }

  /** Whether the node's tunnel is on this server. */
  holds(nodeId: string): boolean {
    return this.#ownTunnels.has(nodeId);
  }

  tunnelOpened(nodeId: string, answers: () => Promise<boolean>): void {
    this.#ownTunnels.set(nodeId, answers);
    void this.#putTunnel(nodeId);
  }

  /**
   * The tunnel key goes (if it is still this server's), then the grace period starts unless the
   * node is back meanwhile: here (a new tunnel: registered again) or on another server (which set
   * the lease since).
   */
  tunnelClosed(nodeId: string): void {
    this.#ownTunnels.delete(nodeId);
    if (this.#context.isClosed()) return;
    const key = this.#key(TUNNELS, nodeId);
    const value = encodeTunnel(this.serverId);
    void this.#context.connection
      .write(`closing the tunnel of node ${nodeId}`, (client) => client.if(key, 'Value', '==', value).then(client.delete().key(key)).commit())
      .then(
        async (result) => {
          if (result.succeeded) await this.#context.feed.waitFor(BigInt(result.header.revision), this.#options.waitMs);
          if (this.#ownTunnels.has(nodeId)) void this.#putTunnel(nodeId);
          // A deletion of ours reaches the watch, where the mirror's closed tunnels start the grace; a key already gone does not.
          else if (!result.succeeded) this.#context.tunnelGone(nodeId);
        },
        (error: unknown) => this.#log.warn({ err: error, node_id: nodeId }, "could not remove a closed tunnel from etcd; the node's lease runs out by itself"),
      );
  }

  tunnelElsewhere(nodeId: string): PeerServer | undefined {
    const serverId = this.#context.mirror.tunnelServer(nodeId);
    const server = serverId === undefined || serverId === this.serverId ? undefined : this.#context.mirror.server(serverId);
    return server && serverId !== undefined ? { serverId, url: server.url } : undefined;
  }

  verifyPeer(serverId: string, secret: string): boolean {
    const server = serverId === this.serverId ? undefined : this.#context.mirror.server(serverId);
    return server !== undefined && sameSecret(server.secret_sha256, hashSecret(secret));
  }

  /** Why this server cannot serve its nodes: its registration is lost (others may take its nodes for gone). */
  problem(): string | undefined {
    return this.#problem;
  }

  /**
   * `servers/<id>` under a fresh etcd lease (kept alive by etcd3); resolves with the put's revision.
   * Refused (`conflict`) while another server holds the id (see #claim).
   */
  async register(): Promise<bigint> {
    const { connection } = this.#context;
    const ttlSeconds = leaseSeconds(this.#options.serverTtlMs);
    const lease = connection.client.lease(ttlSeconds);
    this.#lease = lease;
    rescueKeepalives(lease, ttlSeconds * 1000, connection.callTimeoutMs);
    let registered = false;
    // A lease that cannot be granted is 'lost' too: that is this attempt failing (its caller tries
    // again), not a registration lost. Taking it for one started a retry loop per failed attempt.
    lease.on('lost', (error: Error) => {
      if (this.#context.isClosed() || this.#lease !== lease || !registered) return;
      this.#problem = `this server's registration in etcd was lost (${leaseLostReason(error)}); registering again`;
      this.#log.warn({ reason: leaseLostReason(error) }, 'etcd registration lost: registering again');
      this.#reregistering ??= this.#reregister().finally(() => (this.#reregistering = undefined));
    });
    try {
      const leaseId = await connection.write('registering this server', () => lease.grant());
      const registration = {
        server_id: this.serverId,
        url: this.#options.advertiseUrl,
        secret_sha256: hashSecret(this.#peerSecret),
        started_ms: this.#context.startedMs,
      };
      const revision = await this.#claim(JSON.stringify(registration), leaseId);
      registered = true;
      return revision;
    } catch (error) {
      lease.release(); // no keepalives for a lease nothing is registered under
      throw error;
    }
  }

  /** Its tunnels go with the registration: the other servers start those nodes' grace periods. */
  async revoke(): Promise<void> {
    await this.#lease?.revoke().catch(() => undefined);
  }

  /**
   * Puts `servers/<id>` if absent or still this server's own `value` (a lease etcd3 gave up on, a
   * retried txn that committed), never over another server's: its relays would fail until it
   * restarted. A key at this server's own bound address is a previous run of it (killed, its lease
   * not lapsed yet): the listeners are bound before the store opens, so nobody else serves there,
   * and it is taken over at once. Any other holder counts only once its lease (whole seconds of our
   * TTL) and a retry have passed.
   */
  async #claim(value: string, leaseId: string): Promise<bigint> {
    const key = this.#key(SERVERS, this.serverId);
    const { connection } = this.#context;
    const { advertiseUrl, advertiseUrlIsBound, serverTtlMs } = this.#options;
    const until = Date.now() + leaseSeconds(serverTtlMs) * 1000 + RETRY_MS;
    for (;;) {
      const held = (await connection.read("reading this server id's registration", (client) => client.get(key).exec())).kvs[0];
      const ours = !held || held.value.toString() === value || (advertiseUrlIsBound && addressOf(held.value) === advertiseUrl);
      if (ours) {
        // Guarded on what was read: a server that registered meanwhile is not overwritten.
        const [target, compared] = held ? (['Mod', held.mod_revision] as const) : (['Create', 0] as const);
        const result = await connection.write('registering this server', (client) =>
          client.if(key, target, '==', compared).then(client.put(key).value(value).lease(leaseId)).commit(),
        );
        if (result.succeeded) return BigInt(result.header.revision);
      }
      if (Date.now() >= until) break;
      await new Promise((resolve) => setTimeout(resolve, RETRY_MS));
    }
    throw new ProtocolError(
      'conflict',
      `server id ${this.serverId} is registered in etcd by another running server (${key}): give this one its own --server-id, or stop that one first`,
    );
  }

  #key(area: string, id: string): string {
    return this.#context.connection.key(area + id);
  }

  /** One loop at a time, an attempt every RETRY_MS at most, until registered or closed. */
  async #reregister(): Promise<void> {
    while (!this.#context.isClosed()) {
      try {
        await this.register();
        this.#problem = undefined;
        for (const [nodeId, answers] of this.#ownTunnels) {
          void this.#putTunnel(nodeId);
          this.#context.heldThroughLapse(nodeId, answers);
        }
        this.#log.info('registered in etcd again');
        return;
      } catch {
        await new Promise((resolve) => setTimeout(resolve, RETRY_MS));
      }
    }
  }

  /** `tunnels/<node_id>` → this server, under its registration; tried again while the tunnel is open and etcd does not take it. */
  async #putTunnel(nodeId: string): Promise<void> {
    while (!this.#context.isClosed() && this.#ownTunnels.has(nodeId)) {
      try {
        const lease = this.#lease;
        if (!lease || this.#problem) return; // re-registering puts every tunnel again
        const leaseId = await lease.grant();
        await this.#context.connection.write(`registering the tunnel of node ${nodeId}`, (client) =>
          client.put(this.#key(TUNNELS, nodeId)).value(encodeTunnel(this.serverId)).lease(leaseId).exec(),
        );
        return;
      } catch {
        // Logged by the connection.
        await new Promise((resolve) => setTimeout(resolve, RETRY_MS));
      }
    }
  }
}

/** The advertised URL in a registration's value, or undefined when it is not one of ours. */
/** etcd leases are whole seconds: the TTL rounded up. */
function leaseSeconds(ttlMs: number): number {
  return Math.max(1, Math.ceil(ttlMs / 1000));
}

function addressOf(value: Buffer): string | undefined {
  try {
    const url: unknown = (JSON.parse(value.toString('utf8')) as { url?: unknown }).url;
    return typeof url === 'string' ? url : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Why etcd3 gave up a lease, in words: for a lease that lapsed while etcd could not be reached it
 * puts its sentence where the lease id goes ("Lease We lost connection to etcd and our lease has
 * expired. is expired or revoked").
 */
export function leaseLostReason(error: Error): string {
  return error.message.startsWith('Lease We lost connection')
    ? 'its lease lapsed: no keepalive reached etcd in time'
    : error.message.replace(/^Lease (\S+) is expired or revoked$/, 'lease $1 expired or was revoked');
}
