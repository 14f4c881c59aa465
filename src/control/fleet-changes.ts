import type { Logger } from 'pino';
import type { EventStream } from './catalog-store.js';

/**
 * What a server does as nodes come and go, whichever server of the store made the change: each
 * node's `online`, `offline` and `delete` is a log line (the fleet's history, beside the watchers'
 * streams), and a deleted node's connections end here (its credentials are gone).
 */
export function followFleetChanges(events: Pick<EventStream, 'onEvent'>, log: Logger, dropNode: (nodeId: string) => void): void {
  events.onEvent((event) => {
    if (event.kind === 'upsert') return;
    log.info({ node_id: event.node_id, seq: event.seq }, `node ${event.node_id} ${event.kind === 'delete' ? 'deleted' : event.kind}`);
    if (event.kind === 'delete') dropNode(event.node_id);
  });
}
