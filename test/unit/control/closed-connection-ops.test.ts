// A node's frames that ws hands over after the connection began to close (what the socket still
// held when the server dropped a peer that missed its pongs: after a stall of the server, the lease
// refreshes the node sent meanwhile) are not served: a lease refresh or an upsert would bring the
// node back online with no tunnel until its lease ran out, and relay_ready would route relays to a
// dead connection. Seen: `node n1 offline`, then `node n1 online` 40 ms later, and n1 shown online
// (relays EHOSTUNREACH, "no tunnel") for the next 50 s while the node itself was not connected.
import { EventEmitter } from 'node:events';
import type WebSocket from 'ws';
import t from 'tap';
import type { CatalogStore } from '../../../src/control/catalog-store.js';
import { ControlConnection, type ConnectionHost } from '../../../src/control/connection.js';
import type { ConnectionPeer } from '../../../src/control/connection-peer.js';
import { OPS, type OpContext } from '../../../src/control/ops.js';
import type { RelayHub } from '../../../src/control/relay-hub.js';
import { PROTOCOL } from '../../../src/protocol/envelope.js';
import { ProtocolError } from '../../../src/protocol/errors.js';
import { loadSchemas } from '../../../src/protocol/schemas.js';
import { settledWithin } from '../../helpers/settle.js';

function context(isOpen: boolean): { context: OpContext; served: string[] } {
  const served: string[] = [];
  const connection: ConnectionPeer = { id: 1, isOpen, bufferedBytes: 0, send: () => undefined, sendFrame: () => undefined };
  const catalog = {
    leaseTtlMs: 60_000,
    refresh: async () => {
      served.push('refresh');
      return { leaseExpiresAtMs: Date.now() + 60_000, cameOnline: true };
    },
  } as unknown as CatalogStore;
  const relays = { tunnelReady: () => served.push('tunnelReady') } as unknown as RelayHub;
  const partial: Partial<OpContext> = { principal: { kind: 'node', nodeId: 'n1' }, connection, catalog, relays };
  return { context: partial as OpContext, served };
}

t.test('a lease refresh or relay_ready read after the connection closed: refused, nothing changed', async (t) => {
  for (const type of ['control.node_lease_refresh', 'control.relay_ready', 'control.node_service_upsert']) {
    const { context: closed, served } = context(false);
    const refused = await OPS[type]!.handle(closed, { node_id: 'n1', services: [] } as never).catch((error: unknown) => error);
    t.ok(refused instanceof ProtocolError && refused.code === 'unavailable', `${type}: unavailable`);
    t.same(served, [], `${type}: the catalog and the relay hub were not touched`);
  }
});

t.test('on an open connection they are served as before', async (t) => {
  const { context: open, served } = context(true);
  await OPS['control.node_lease_refresh']!.handle(open, { node_id: 'n1' } as never);
  await OPS['control.relay_ready']!.handle(open, { node_id: 'n1' } as never);
  t.same(served, ['refresh', 'tunnelReady']);
});

t.test('settled: a close waits for the ops the connection had started (the server starts the grace after them)', async (t) => {
  // A socket that says it is open and keeps what it is sent.
  const sent: string[] = [];
  const socket = Object.assign(new EventEmitter(), {
    OPEN: 1,
    readyState: 1,
    bufferedAmount: 0,
    send: (f: string) => sent.push(String(f)),
    close: () => undefined,
    terminate: () => undefined,
    pause: () => undefined,
    resume: () => undefined,
  });
  let commit: () => void = () => undefined;
  const catalog = {
    leaseTtlMs: 60_000,
    storedServices: () => undefined,
    refresh: () => new Promise((resolve) => (commit = () => resolve({ leaseExpiresAtMs: 0, cameOnline: true }))),
  } as unknown as CatalogStore;
  const silent = { child: () => silent, debug: () => undefined, info: () => undefined, warn: () => undefined, error: () => undefined };
  const host = {
    schemas: await loadSchemas(),
    log: silent,
    context: () => ({ catalog, metrics: { frames: { inc: () => undefined }, errors: { inc: () => undefined } } }),
    onClose: () => undefined,
  } as unknown as ConnectionHost;
  const connection = new ControlConnection(socket as unknown as WebSocket, { kind: 'node', nodeId: 'n1' }, 1, host);
  const frame = (id: string, type: string, payload: unknown): Buffer => Buffer.from(JSON.stringify({ channel: 'control', id, type, payload }));
  socket.emit('message', frame('v', 'control.version', { protocol: PROTOCOL }), false);
  socket.emit('message', frame('r', 'control.node_lease_refresh', { node_id: 'n1' }), false);
  let settled = false;
  const waiting = connection.settled().then(() => (settled = true));
  await new Promise((resolve) => setTimeout(resolve, 20));
  t.notOk(settled, 'not while the refresh is still committing');
  commit();
  await waiting;
  t.ok(settled, 'once it has');
  t.match(JSON.parse(sent.at(-1) ?? '{}'), { id: 'r', ok: true }, 'and the refresh was answered');
  t.ok(
    await settledWithin(
      connection.settled().then(() => true),
      100,
      false,
    ),
    'nothing running: at once',
  );
});
