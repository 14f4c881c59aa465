import type { Logger } from 'pino';
import type { EventStream } from './catalog-store.js';
import type { Principal } from './principal.js';

/** What this needs of a connection of the server's (ControlConnection). */
export interface FleetConnection {
  readonly principal: Principal;
  readonly openedMs: number;
  dropLapsedIfSilent(): Promise<void>;
}

/**
 * What a server does as nodes come and go, whichever server of the store made the change: each
 * node's `online`, `offline` and `delete` is a log line (the fleet's history, beside the watchers'
 * streams); a deleted node's connections end here (its credentials are gone), and so do the tunnels
 * of a node whose lease lapsed that are older than that and answer no ping: a silent link the
 * periodic pings have not caught yet, on which a late lease refresh would bring the node back
 * online with no tunnel.
 */
export function followFleetChanges(
  events: Pick<EventStream, 'onEvent'>,
  log: Logger,
  connections: Iterable<FleetConnection>,
  dropDeleted: (nodeId: string) => void,
): void {
  events.onEvent((event) => {
    if (event.kind === 'upsert') return;
    log.info({ node_id: event.node_id, seq: event.seq }, `node ${event.node_id} ${event.kind === 'delete' ? 'deleted' : event.kind}`);
    if (event.kind === 'delete') dropDeleted(event.node_id);
    if (event.kind !== 'offline') return;
    for (const connection of connections) {
      const { principal: p } = connection;
      if (p.kind === 'node' && p.nodeId === event.node_id && connection.openedMs <= event.timestamp_ms) void connection.dropLapsedIfSilent();
    }
  });
}
