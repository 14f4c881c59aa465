// src/control/store-outage.ts: a server whose store fails every check for a third of the grace
// period (at most 4 s; here a short grace) tells its node sessions and its clients (watchers,
// WorldFS), control.store_unavailable, again every 2 s while it lasts; never the other servers'
// sessions (peers), never while the store answers, and anew after it came back.
import t from 'tap';
import { pino } from 'pino';
import type { ControlConnection } from '../../../src/control/connection.js';
import { StoreOutage } from '../../../src/control/store-outage.js';

function setup(graceMs: number) {
  let problem: string | undefined;
  const sent: Array<{ to: string; frame: { type: string; payload: { reason: string; since_ms: number } } }> = [];
  const connection = (kind: string, name: string) =>
    ({
      principal: { kind },
      send: (frame: unknown) => void sent.push({ to: name, frame: frame as (typeof sent)[number]['frame'] }),
    }) as unknown as ControlConnection;
  const connections = [connection('node', 'n1'), connection('admin', 'admin'), connection('peer', 'server-b'), connection('node', 'n2')];
  const outage = new StoreOutage({
    store: { problem: async () => problem },
    connections: () => connections,
    offlineGraceMs: graceMs,
    log: pino({ level: 'silent' }),
  });
  return { outage, sent, setProblem: (p: string | undefined) => (problem = p) };
}
const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

t.test('nodes and clients are told once the store has failed for a third of the grace, not before, and not the other servers', async (t) => {
  const { outage, sent, setProblem } = setup(300);
  await outage.check();
  t.same(sent, [], 'nothing while the store answers');
  setProblem('control store (etcd): readiness check failed: no etcd member could serve it');
  const failedAt = Date.now();
  await outage.check();
  t.same(sent, [], 'not at the first failed check');
  await sleep(120);
  await outage.check();
  t.same(
    sent.map((s) => s.to),
    ['n1', 'admin', 'n2'],
    'each node and client session told (not the peer server), once the store has failed for 100 ms',
  );
  t.equal(sent[0]?.frame.type, 'control.store_unavailable');
  t.match(sent[0]?.frame.payload.reason, /readiness check failed/);
  t.ok(Math.abs((sent[0]?.frame.payload.since_ms ?? 0) - failedAt) < 50, 'since_ms: when the checks began to fail');
  await outage.check();
  t.equal(sent.length, 3, 'not again at the next check: every 2 s');
  setProblem(undefined);
  await outage.check();
  setProblem('down again');
  await outage.check();
  t.equal(sent.length, 3, 'back, then down again: the wait starts over');
});
