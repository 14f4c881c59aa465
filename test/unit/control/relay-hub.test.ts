// SPEC §7 relay metrics: every relay that ends (answered, timed out at its bound, its tunnel closed,
// no tunnel, through a peer server) is counted in acheron_relay_operations_total and observed in
// acheron_relay_latency_seconds with the same op and outcome, so a node whose drivers hang shows in
// the latency too. SPEC §9 bounds: an invoke that states no timeout_ms (a session without `read`
// cannot see the descriptor) waits invokeWaitMs of the service's descriptor in the server's catalog,
// and a peer server is given that bound. The hub in process, with a tunnel that keeps what it is sent.
import t from 'tap';
import type { CatalogStore, EventStream } from '../../../src/control/catalog-store.js';
import type { ConnectionPeer } from '../../../src/control/connection-peer.js';
import { ControlMetrics } from '../../../src/control/metrics.js';
import type { PeerLinks } from '../../../src/control/peer-links.js';
import { RelayHub, relayWaitMs } from '../../../src/control/relay-hub.js';
import { aloneDirectory, type ServerDirectory } from '../../../src/control/server-directory.js';
import { invokeWaitMs, RELAY_WAIT_MS } from '../../../src/protocol/relay.js';
import type { NodeState, RelayOutcome, RelayPayload, RelayRequest, ServiceDescriptor } from '../../../src/protocol/types.gen.js';

/** A node tunnel: the relay requests pushed to it, by relay id. */
function tunnel(id: number): ConnectionPeer & { requests: RelayRequest[] } {
  const requests: RelayRequest[] = [];
  return {
    id,
    isOpen: true,
    bufferedBytes: 0,
    requests,
    send: (frame) => requests.push((frame as { payload: RelayRequest }).payload),
    sendFrame: () => undefined,
  };
}

// The hub's relay timers are unref'd (they never keep a server up): this keeps the test process up for them.
const alive = setInterval(() => undefined, 1_000);
t.teardown(() => clearInterval(alive));

/** A catalog of one node, n1, with one service `s` whose runs are short and whose queue is short. */
const RUNTIME = { timeout_ms: 2_000, kill_grace_ms: 500, max_queue: 3, max_concurrency: 2 } as ServiceDescriptor['runtime'];
const states = new Map<string, NodeState>([['n1', 'online']]);
const catalog = {
  service: (nodeId: string, serviceId: string) => (nodeId === 'n1' && serviceId === 's' ? ({ runtime: RUNTIME } as ServiceDescriptor) : undefined),
  nodeState: (nodeId: string) => states.get(nodeId),
};

// Only the relay metrics are read here: the catalog and event gauges are never collected.
const newMetrics = (): ControlMetrics => new ControlMetrics({} as CatalogStore, {} as EventStream, 'test:1', async () => undefined);

const request = (op: RelayPayload['op'], extra: Partial<RelayPayload> = {}): RelayPayload => ({
  node_id: 'n1',
  request_id: `${op}-1`,
  op,
  path: '/services/s/status.json',
  ...extra,
});

/** The histogram's sample count and sum for one op and outcome, and the counter's value for them. */
async function seen(metrics: ControlMetrics, op: string, outcome: string): Promise<{ observed: number; seconds: number; counted: number }> {
  const latency = (await metrics.relay.latency.get()).values.filter((v) => v.labels.op === op && v.labels.outcome === outcome);
  const counted = (await metrics.relay.operations.get()).values.find((v) => v.labels.op === op && v.labels.outcome === outcome)?.value ?? 0;
  return {
    observed: latency.find((v) => v.metricName === 'acheron_relay_latency_seconds_count')?.value ?? 0,
    seconds: latency.find((v) => v.metricName === 'acheron_relay_latency_seconds_sum')?.value ?? 0,
    counted,
  };
}

t.test('a relay the node answers: observed with outcome ok', async (t) => {
  const metrics = newMetrics();
  const hub = new RelayHub(metrics, aloneDirectory('test:1'), {} as PeerLinks, catalog);
  const node = tunnel(1);
  hub.tunnelReady('n1', node);
  const pending = hub.forward(request('read_file'), 's1');
  const relayId = node.requests[0]?.relay_id as string;
  t.ok(hub.complete('n1', relayId, { ok: true }), 'the reply is taken');
  t.match(await pending, { ok: true });
  t.match(await seen(metrics, 'read_file', 'ok'), { observed: 1, counted: 1 }, 'observed and counted once');
});

t.test('a relay the node does not answer within its bound: ETIMEDOUT, observed at the bound', async (t) => {
  const metrics = newMetrics();
  const hub = new RelayHub(metrics, aloneDirectory('test:1'), {} as PeerLinks, catalog);
  hub.tunnelReady('n1', tunnel(1));
  t.match(await hub.forward(request('invoke', { timeout_ms: 200 }), 's1'), { ok: false, errno: 'ETIMEDOUT' });
  const { observed, seconds, counted } = await seen(metrics, 'invoke', 'ETIMEDOUT');
  t.equal(counted, 1, 'counted');
  t.equal(observed, 1, 'observed in acheron_relay_latency_seconds');
  t.ok(seconds >= 0.19, `with the time it waited (${seconds} s)`);
});

t.test('a relay whose tunnel closes before the answer: EHOSTUNREACH, observed; so is one with no tunnel at all', async (t) => {
  const metrics = newMetrics();
  const hub = new RelayHub(metrics, aloneDirectory('test:1'), {} as PeerLinks, catalog);
  const node = tunnel(1);
  hub.tunnelReady('n1', node);
  const pending = hub.forward(request('stat'), 's1');
  hub.tunnelClosed(node);
  t.match(await pending, { ok: false, errno: 'EHOSTUNREACH' });
  t.match(await seen(metrics, 'stat', 'EHOSTUNREACH'), { observed: 1, counted: 1 }, 'the closed tunnel');
  t.match(await hub.forward(request('stat'), 's1'), { ok: false, errno: 'EHOSTUNREACH' });
  t.match(await seen(metrics, 'stat', 'EHOSTUNREACH'), { observed: 2, counted: 2 }, 'and no tunnel');
});

t.test('no tunnel: the reason says what the catalog knows of the node, and whether another server may hold it', async (t) => {
  const message = async (directory: ServerDirectory, nodeId = 'n1'): Promise<string | undefined> =>
    ((await new RelayHub(newMetrics(), directory, {} as PeerLinks, catalog).forward(request('stat', { node_id: nodeId }), 's1')) as { message?: string })
      .message;
  const shared: ServerDirectory = { ...aloneDirectory('test:1'), shared: true };
  const starting = 'node n1 has no tunnel ready for relays (not connected to the control server, or still starting up)';
  t.equal(await message(aloneDirectory('test:1')), starting, 'online, one server: it is connecting or starting');
  t.equal(
    await message(shared),
    'node n1 is online but no server of the store holds a tunnel of it that serves now (it closed, its server stopped answering or was cut off from the store, or the node is starting up): it connects again, or turns offline after the grace period',
    'online, a shared store: its server may have stopped answering (it said "not connected", sending the operator the wrong way)',
  );
  states.set('n1', 'offline');
  t.teardown(() => void states.set('n1', 'online'));
  t.equal(await message(shared), 'node n1 is offline (its lease lapsed or its tunnel closed: no tunnel to relay to)', 'offline: said so');
  t.equal(
    await message(aloneDirectory('test:1'), 'n9'),
    'node n9 has no tunnel ready for relays (not connected to the control server, or still starting up)',
    'a node the catalog does not have yet (joining)',
  );
});

t.test('a tunnel in doubt (its node offline by its lease, no ping answered yet) gets no relay; once it answers, it does', async (t) => {
  const hub = new RelayHub(newMetrics(), aloneDirectory('test:1'), {} as PeerLinks, catalog);
  const node = tunnel(1);
  hub.tunnelReady('n1', node);
  hub.doubt(node, true);
  t.match(await hub.forward(request('stat'), 's1'), { ok: false, errno: 'EHOSTUNREACH' }, 'at once, not at the bound');
  t.same(node.requests, [], 'nothing pushed to it');
  const newer = tunnel(2);
  hub.tunnelReady('n1', newer);
  void hub.forward(request('stat'), 's1');
  t.equal(newer.requests.length, 1, 'a tunnel the node opened since serves');
  hub.tunnelClosed(newer);
  hub.doubt(node, false);
  void hub.forward(request('stat'), 's1');
  t.equal(node.requests.length, 1, 'it answered a ping: relays go to it again');
});

t.test("a relay through a peer server: observed with the peer's outcome", async (t) => {
  const metrics = newMetrics();
  const directory: ServerDirectory = { ...aloneDirectory('test:1'), tunnelElsewhere: () => ({ serverId: 'test:2', url: 'ws://127.0.0.1:1' }) };
  const peers = {
    forward: () => new Promise<RelayOutcome>((resolve) => setTimeout(() => resolve({ ok: false, errno: 'ETIMEDOUT', message: 'slow' }), 100)),
  } as unknown as PeerLinks;
  const hub = new RelayHub(metrics, directory, peers, catalog);
  t.match(await hub.forward(request('list'), 's1'), { ok: false, errno: 'ETIMEDOUT' });
  const { observed, seconds, counted } = await seen(metrics, 'list', 'ETIMEDOUT');
  t.same([observed, counted], [1, 1], 'observed and counted once');
  t.ok(seconds >= 0.09, `with the peer's time (${seconds} s)`);
});

t.test("a peer server's link closes: the nodes release the sessions it forwarded (a server that died cannot say so)", async (t) => {
  const hub = new RelayHub(newMetrics(), aloneDirectory('test:1'), {} as PeerLinks, catalog);
  const closed: string[] = [];
  const node: ConnectionPeer = {
    id: 1,
    isOpen: true,
    bufferedBytes: 0,
    send: (frame) => {
      const { type, payload } = frame as { type: string; payload: { session?: string } };
      if (type === 'control.relay_session_closed') closed.push(payload.session as string);
    },
    sendFrame: () => undefined,
  };
  hub.tunnelReady('n1', node);
  // Two sessions of server A open handles through its link; a third is told gone by A itself.
  for (const session of ['a:c1', 'a:c2', 'a:c3']) void hub.forward(request('open', { timeout_ms: 60_000 }), session, { via: 'link-a' });
  hub.sessionGone('a:c3');
  t.same(closed, ['a:c3'], 'relay_session_gone: that session is released at once');
  hub.sessionGone('link-a');
  t.same(closed.sort(), ['a:c1', 'a:c2', 'a:c3'], 'the link closing releases the sessions it forwarded, each once');
  hub.sessionGone('link-a');
  t.equal(closed.length, 3, 'and nothing is left to release after it');
  hub.tunnelClosed(node);
});

t.test("the server's bound: the stated timeout_ms; an invoke without one, from the descriptor in its catalog", async (t) => {
  const invoke = request('invoke', { path: '/services/s/control/invoke.json' });
  t.equal(relayWaitMs(catalog, { ...invoke, timeout_ms: 1_234 }), 1_234, 'a stated bound is kept');
  // (⌈3 ÷ 2⌉ + 1) × (2 s + 0.5 s) + 60 s: a session without `read` states none, and used to wait a day.
  t.equal(relayWaitMs(catalog, invoke), invokeWaitMs(RUNTIME), 'an invoke without one: invokeWaitMs of the descriptor');
  t.equal(relayWaitMs(catalog, invoke), 67_500);
  t.equal(
    relayWaitMs(catalog, request('invoke', { path: '/services/nosuch/control/invoke.json' })),
    RELAY_WAIT_MS,
    'a service not in the catalog: the default',
  );
  t.equal(relayWaitMs(catalog, request('invoke', { node_id: 'n2', path: '/services/s/control/invoke.json' })), RELAY_WAIT_MS, 'nor a node');
  t.equal(relayWaitMs(catalog, request('stage', { path: '/services/s/control/invoke.json' })), RELAY_WAIT_MS, 'any other op: the default');
});

t.test('an invoke without timeout_ms through a peer server: the bound derived here goes with it', async (t) => {
  const directory: ServerDirectory = { ...aloneDirectory('test:1'), tunnelElsewhere: () => ({ serverId: 'test:2', url: 'ws://127.0.0.1:1' }) };
  const sent: RelayPayload[] = [];
  const peers = { forward: async (_peer: unknown, relay: RelayPayload) => (sent.push(relay), { ok: true }) } as unknown as PeerLinks;
  const hub = new RelayHub(newMetrics(), directory, peers, catalog);
  await hub.forward(request('invoke', { path: '/services/s/control/invoke.json' }), 's1');
  t.equal(sent[0]?.timeout_ms, invokeWaitMs(RUNTIME), "the peer's timer and this server's wait for it: the descriptor's bound");
});
