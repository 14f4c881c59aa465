import type { Logger } from 'pino';
import { ControlClient } from '../protocol/control-client.js';
import { RELAY_WAIT_MS } from '../protocol/relay.js';
import { SchemaError, type Schemas } from '../protocol/schemas.js';
import { ServerFrameCheck } from '../protocol/server-frames.js';
import type { RelayOutcome, RelayPayload } from '../protocol/types.gen.js';
import type { PeerServer } from './server-directory.js';

/** How much longer than the relay's own bound the forwarding server waits for the peer's answer. */
const PEER_SLACK_MS = 5_000;
/**
 * How long a peer may take to complete the WebSocket handshake of a link; the relays waiting for the
 * link then answer EHOSTUNREACH (a hung server: it took the TCP connection and says nothing). Not
 * shorter: a relay is never retried, so a loaded peer taken for gone fails an operation; and no
 * longer: a mount's own operations end at 15 s, and the peer's nodes move to another server anyway
 * once it is taken for gone (--server-ttl-ms + --offline-grace-ms).
 */
const PEER_HANDSHAKE_MS = 10_000;

/**
 * This server's connections to the other servers of its store (etcd), opened when a relay first
 * needs one (the peer found in etcd as the holder of the node's tunnel) and authenticated with this
 * server's peer token. A relay goes over as one `control.relay_peer` request and is never retried:
 * a link that fails or drops answers EHOSTUNREACH, as a node tunnel that closes does (at most once):
 * at once for a refused connection, after PEER_HANDSHAKE_MS for a peer that never completes the
 * handshake, and for one that goes silent on an open link when the client's liveness check drops it.
 */
export class PeerLinks {
  #token: string;
  #log: Logger;
  /** Every frame a peer sends is checked (docs/schemas) before a relay's answer is taken from it. */
  #check: ServerFrameCheck;
  #links = new Map<string, Promise<ControlClient>>();

  constructor(token: string, schemas: Schemas, log: Logger) {
    this.#token = token;
    this.#check = new ServerFrameCheck(schemas, { events: 'full' });
    this.#log = log;
  }

  async forward(peer: PeerServer, request: RelayPayload, session: string): Promise<RelayOutcome> {
    const unreachable = (why: string): RelayOutcome => ({
      ok: false,
      errno: 'EHOSTUNREACH',
      message: `node ${request.node_id}'s tunnel is on server ${peer.serverId} (${peer.url}), out of reach: ${why}`,
    });
    let client: ControlClient;
    try {
      client = await this.#link(peer);
    } catch (error) {
      return unreachable((error as Error).message);
    }
    try {
      return await client.request<RelayOutcome>('control.relay_peer', { relay: request, session }, (request.timeout_ms ?? RELAY_WAIT_MS) + PEER_SLACK_MS);
    } catch (error) {
      if (error instanceof SchemaError)
        return { ok: false, errno: 'EIO', message: `server ${peer.serverId} answered ${request.op} ${request.path} with a bad frame: ${error.message}` };
      return client.isOpen
        ? { ok: false, errno: 'ETIMEDOUT', message: `server ${peer.serverId} did not answer ${request.op} ${request.path}: ${(error as Error).message}` }
        : unreachable((error as Error).message);
    }
  }

  /** A requester's session ended here: the peer tells the nodes it reached for it. */
  sessionGone(peer: PeerServer, session: string): void {
    void this.#links
      .get(this.#key(peer))
      ?.then((client) => client.request('control.relay_session_gone', { session }))
      .catch((error: unknown) =>
        this.#log.debug(
          { err: error, server_id: peer.serverId },
          'could not tell a peer that a relay session ended; its nodes release the handles when they idle out',
        ),
      );
  }

  close(): void {
    for (const link of this.#links.values())
      void link.then(
        (client) => client.terminate(),
        () => undefined,
      );
    this.#links.clear();
  }

  #key(peer: PeerServer): string {
    return `${peer.serverId} ${peer.url}`;
  }

  #link(peer: PeerServer): Promise<ControlClient> {
    const key = this.#key(peer);
    let link = this.#links.get(key);
    if (!link) {
      link = ControlClient.connect({
        url: peer.url,
        token: this.#token,
        handshakeTimeoutMs: PEER_HANDSHAKE_MS,
        check: this.#check,
        onInvalidPush: (error) =>
          this.#log.warn(
            { server_id: peer.serverId, problems: error.problems.map((p) => p.message) },
            `bad frame from a peer server, dropped: ${error.message}`,
          ),
      });
      this.#links.set(key, link);
      const forget = (): void => {
        if (this.#links.get(key) === link) this.#links.delete(key);
      };
      link.then((client) => void client.closed.then(forget), forget);
      this.#log.info({ server_id: peer.serverId, url: peer.url }, 'connecting to a peer server for relays');
    }
    return link;
  }
}
