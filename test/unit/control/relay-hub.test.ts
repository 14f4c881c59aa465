// SPEC §7 relay metrics: every relay that ends (answered, timed out at its bound, its tunnel closed,
// no tunnel, through a peer server) is counted in acheron_relay_operations_total and observed in
// acheron_relay_latency_seconds with the same op and outcome, so a node whose drivers hang shows in
// the latency too. The hub in process, with a tunnel that keeps what it is sent.
import t from 'tap';
import type { CatalogStore, EventStream } from '../../../src/control/catalog-store.js';
import type { ConnectionPeer } from '../../../src/control/connection-peer.js';
import { ControlMetrics } from '../../../src/control/metrics.js';
import type { PeerLinks } from '../../../src/control/peer-links.js';
import { RelayHub } from '../../../src/control/relay-hub.js';
import { aloneDirectory, type ServerDirectory } from '../../../src/control/server-directory.js';
import type { RelayOutcome, RelayPayload, RelayRequest } from '../../../src/protocol/types.gen.js';

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
  const hub = new RelayHub(metrics, aloneDirectory('test:1'), {} as PeerLinks);
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
  const hub = new RelayHub(metrics, aloneDirectory('test:1'), {} as PeerLinks);
  hub.tunnelReady('n1', tunnel(1));
  t.match(await hub.forward(request('invoke', { timeout_ms: 200 }), 's1'), { ok: false, errno: 'ETIMEDOUT' });
  const { observed, seconds, counted } = await seen(metrics, 'invoke', 'ETIMEDOUT');
  t.equal(counted, 1, 'counted');
  t.equal(observed, 1, 'observed in acheron_relay_latency_seconds');
  t.ok(seconds >= 0.19, `with the time it waited (${seconds} s)`);
});

t.test('a relay whose tunnel closes before the answer: EHOSTUNREACH, observed; so is one with no tunnel at all', async (t) => {
  const metrics = newMetrics();
  const hub = new RelayHub(metrics, aloneDirectory('test:1'), {} as PeerLinks);
  const node = tunnel(1);
  hub.tunnelReady('n1', node);
  const pending = hub.forward(request('stat'), 's1');
  hub.tunnelClosed(node);
  t.match(await pending, { ok: false, errno: 'EHOSTUNREACH' });
  t.match(await seen(metrics, 'stat', 'EHOSTUNREACH'), { observed: 1, counted: 1 }, 'the closed tunnel');
  t.match(await hub.forward(request('stat'), 's1'), { ok: false, errno: 'EHOSTUNREACH' });
  t.match(await seen(metrics, 'stat', 'EHOSTUNREACH'), { observed: 2, counted: 2 }, 'and no tunnel');
});

t.test("a relay through a peer server: observed with the peer's outcome", async (t) => {
  const metrics = newMetrics();
  const directory: ServerDirectory = { ...aloneDirectory('test:1'), tunnelElsewhere: () => ({ serverId: 'test:2', url: 'ws://127.0.0.1:1' }) };
  const peers = {
    forward: () => new Promise<RelayOutcome>((resolve) => setTimeout(() => resolve({ ok: false, errno: 'ETIMEDOUT', message: 'slow' }), 100)),
  } as unknown as PeerLinks;
  const hub = new RelayHub(metrics, directory, peers);
  t.match(await hub.forward(request('list'), 's1'), { ok: false, errno: 'ETIMEDOUT' });
  const { observed, seconds, counted } = await seen(metrics, 'list', 'ETIMEDOUT');
  t.same([observed, counted], [1, 1], 'observed and counted once');
  t.ok(seconds >= 0.09, `with the peer's time (${seconds} s)`);
});

t.test("a peer server's link closes: the nodes release the sessions it forwarded (a server that died cannot say so)", async (t) => {
  const hub = new RelayHub(newMetrics(), aloneDirectory('test:1'), {} as PeerLinks);
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
