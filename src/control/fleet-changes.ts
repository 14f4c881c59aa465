import type { Logger } from 'pino';
import type WebSocket from 'ws';
import type { EventStream } from './catalog-store.js';
import type { ConnectionPeer } from './connection-peer.js';
import type { ConnectionSet } from './connection-set.js';
import { answersPing } from './ping-probe.js';
import type { Principal } from './principal.js';
import type { RelayHub } from './relay-hub.js';

/** What this needs of a connection of the server's (ControlConnection). */
export interface FleetConnection extends ConnectionPeer {
  readonly principal: Principal;
  readonly openedMs: number;
  readonly socket: WebSocket;
  drop(reason: 'lease_lapsed', message: string): void;
}

export interface FleetFollowers {
  connections: Pick<ConnectionSet<FleetConnection>, 'ofNode'>;
  relays: Pick<RelayHub, 'doubt'>;
  /** Ends the connections of a deleted node (its credentials are gone). */
  dropDeleted(nodeId: string): void;
}

/**
 * What a server does as nodes come and go, whichever server of the store made the change: each
 * node's `online`, `offline` and `delete` is a log line (the fleet's history, beside the watchers'
 * streams), and a deleted node's connections end here. A node offline by its lease while a tunnel
 * of it here, older than that, still looked open (a silent link the periodic pings have not caught
 * yet: a lease shorter than two ping intervals) gets no relay on it until it answers a ping, and is
 * dropped if it does not: what it delivers late (lease refreshes sent into the cut) must not bring
 * the node back online with no tunnel. One that answers (its server stalled past the lease) stays.
 */
export function followFleetChanges(events: Pick<EventStream, 'onEvent'>, log: Logger, fleet: FleetFollowers): void {
  events.onEvent((event) => {
    if (event.kind === 'upsert') return;
    log.info({ node_id: event.node_id, seq: event.seq }, `node ${event.node_id} ${event.kind === 'delete' ? 'deleted' : event.kind}`);
    if (event.kind === 'delete') fleet.dropDeleted(event.node_id);
    if (event.kind !== 'offline') return;
    for (const connection of fleet.connections.ofNode(event.node_id)) if (connection.openedMs <= event.timestamp_ms) void settleDoubt(connection, fleet.relays);
  });
}

async function settleDoubt(connection: FleetConnection, relays: Pick<RelayHub, 'doubt'>): Promise<void> {
  relays.doubt(connection, true);
  if (await answersPing(connection.socket)) relays.doubt(connection, false);
  else if (connection.isOpen) connection.drop('lease_lapsed', 'node lease lapsed and its connection answers no ping: dropping it (the node connects again)');
}
