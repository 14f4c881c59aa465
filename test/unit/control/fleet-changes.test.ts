// A node offline by its lease (SPEC §6) while a tunnel of it still looks open: the tunnels older
// than that event are in doubt (no relay goes there) until they answer a ping; one that does not is
// dropped (`lease_lapsed`), one that does serves again. Newer tunnels, other nodes' and sessions
// that are not nodes' are left alone. Fakes of the connections: what matters is who is asked what.
import t from 'tap';
import { EventEmitter } from 'node:events';
import pino from 'pino';
import type WebSocket from 'ws';
import type { CatalogEvent } from '../../../src/control/catalog-event.js';
import { followFleetChanges, type FleetConnection } from '../../../src/control/fleet-changes.js';
import type { ConnectionPeer } from '../../../src/control/connection-peer.js';
import { ConnectionSet } from '../../../src/control/connection-set.js';
import type { Principal } from '../../../src/control/principal.js';

/** A connection whose peer answers pings (`answers`) or not. */
function connection(principal: Principal, openedMs: number, answers: boolean): FleetConnection & { dropped: string[] } {
  const socket = Object.assign(new EventEmitter(), {
    OPEN: 1,
    readyState: 1,
    ping(): void {
      if (answers) setImmediate(() => socket.emit('pong'));
    },
  });
  const dropped: string[] = [];
  return {
    id: openedMs,
    principal,
    openedMs,
    socket: socket as unknown as WebSocket,
    isOpen: true,
    bufferedBytes: 0,
    send: () => undefined,
    sendFrame: () => undefined,
    drop: (reason) => void dropped.push(reason),
    dropped,
  };
}

t.test('offline: the older tunnels of that node are doubted; the silent one dropped, the answering one kept', async (t) => {
  let emit: (event: CatalogEvent) => void = () => undefined;
  const events = { onEvent: (listener: (event: CatalogEvent) => void) => void (emit = listener) };
  const node = (nodeId: string): Principal => ({ kind: 'node', nodeId, tokenId: `node.${nodeId}` }) as Principal;
  const silent = connection(node('n1'), 1_000, false);
  const live = connection(node('n1'), 1_500, true);
  const newer = connection(node('n1'), 5_000, false);
  const other = connection(node('n2'), 1_000, false);
  const admin = connection({ kind: 'admin', tokenId: 'admin' }, 1_000, false);
  const doubts: Array<[number, boolean]> = [];
  const relays = { doubt: (tunnel: ConnectionPeer, inDoubt: boolean) => void doubts.push([tunnel.id, inDoubt]) };
  const connections = new ConnectionSet<FleetConnection>();
  [silent, live, newer, other, admin].forEach((c) => connections.add(c));
  followFleetChanges(events, pino({ level: 'silent' }), { connections, relays, dropDeleted: () => undefined });
  emit({ kind: 'offline', node_id: 'n1', seq: 7, timestamp_ms: 2_000 } as CatalogEvent);
  t.same(
    doubts,
    [
      [1_000, true],
      [1_500, true],
    ],
    'the two tunnels older than the event: in doubt at once',
  );
  // The ping probe's bound (2 s) for the one that does not answer.
  await new Promise((resolve) => setTimeout(resolve, 2_200));
  t.same(silent.dropped, ['lease_lapsed'], 'the silent one: dropped');
  t.same(live.dropped, [], 'the one that answered: kept');
  t.same(doubts.slice(2), [[1_500, false]], '…and serving relays again');
  t.same([newer.dropped, other.dropped, admin.dropped], [[], [], []], "a newer tunnel, another node's, an admin's: left alone");
});
