// A WorldFS catalog whose server loses its store (control.store_unavailable) moves to the next
// server of its list and keeps showing its catalog meanwhile. Relays that come between the two
// connections wait for the next one (bounded) instead of answering ENOTCONN, and none goes out on
// the new connection before its project session is attached (a user's relay needs it: EACCES
// otherwise). Two scripted ws servers; the second one's attach is slowed to widen the window.
import t, { type Test } from 'tap';
import { FsError } from '../../../src/errors/errno.js';
import type { SessionAttachReply } from '../../../src/protocol/types.gen.js';
import type { WorldCatalog } from '../../../src/world/world-catalog.js';
import { waitFor } from '../../helpers/process.js';
import { scriptedControl, type ScriptedControl } from '../../helpers/scripted-control.js';
import { startTestCatalog } from '../../helpers/world-catalog.js';

const ACTIONS = { read: 'allowed', observe: 'allowed', invoke: 'allowed', mount: 'allowed', admin: 'refused' };
const GRANT: SessionAttachReply = { project_id: 'p', has_project_token: false, nodes: [], actions: ACTIONS };
const ATTACH_DELAY_MS = 300;
const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

const ANSWERS = {
  'control.node_service_watch': () => ({ watch_id: 'w1', enabled: true, include: 'delta', replay_limit: 0, replayed: 0, head_seq: 7 }),
  'control.node_list': () => ({ nodes: [] }),
  'control.relay': () => ({ ok: true, result: { size: 1 } }),
};

/**
 * Two scripted servers and a user's catalog following the first; `secondAttach` answers the
 * session's attach on the second (the first attach is on the first), `relayed` sees each relay the
 * second gets. The catalog is stopped first, its servers after.
 */
async function moving(
  t: Test,
  secondAttach: () => Promise<SessionAttachReply>,
  relayed: () => void = () => undefined,
): Promise<{ first: ScriptedControl; second: ScriptedControl; catalog: WorldCatalog }> {
  const first = await scriptedControl(ANSWERS);
  const second = await scriptedControl({ ...ANSWERS, 'control.relay': () => (relayed(), ANSWERS['control.relay']()) });
  let attaches = 0;
  const catalog = await startTestCatalog(t, { urls: [first.url, second.url], attach: async () => (++attaches === 1 ? GRANT : secondAttach()) }, () =>
    Promise.all([first.close(), second.close()]),
  );
  return { first, second, catalog };
}

/** The first server says its store is lost: the catalog moves to the second. */
const loseStore = (server: ScriptedControl): void =>
  server.send({ channel: 'control', type: 'control.store_unavailable', ok: true, payload: { reason: 'etcd: cut off', since_ms: Date.now() } });

t.test('a move: relays meanwhile wait for the next server, and go out there only once the session is attached', async (t) => {
  const relayedAt: number[] = [];
  let secondAttachedAt = Infinity;
  const { first, catalog } = await moving(
    t,
    async () => {
      await sleep(ATTACH_DELAY_MS);
      secondAttachedAt = Date.now();
      return GRANT;
    },
    () => relayedAt.push(Date.now()),
  );

  const outcomes: Array<Promise<string>> = [];
  let relaying = true;
  const relays = (async () => {
    // Bounded, should the move never come.
    for (const end = Date.now() + 10_000; relaying && Date.now() < end;) {
      outcomes.push(
        catalog.relay('n1', { op: 'stat', path: '/services/s/status.json' }).then(
          () => 'ok',
          (error: unknown) => (error instanceof FsError ? error.errno : String(error)),
        ),
      );
      await sleep(1);
    }
  })();
  await sleep(50);
  loseStore(first);
  try {
    await waitFor(() => secondAttachedAt < Infinity && relayedAt.length > 0, { what: 'the second session attached and relaying', timeoutMs: 5000 });
    await sleep(50);
  } finally {
    relaying = false;
    await relays;
  }
  const settled = await Promise.all(outcomes);
  t.ok(catalog.connected, 'the catalog is shown');
  t.same(
    settled.filter((outcome) => outcome !== 'ok'),
    [],
    `every relay answered (${settled.length}), none ENOTCONN during the move`,
  );
  t.ok(
    relayedAt.every((at) => at >= secondAttachedAt),
    'no relay reached the next server before its session was attached',
  );
  t.ok(
    first.requests.some((r) => r.type === 'control.relay'),
    'relays went to the first server before the move',
  );
});

t.test('a move whose next server never attaches: a relay waits at most MOVE_WAIT_MS, then ENOTCONN', async (t) => {
  const { first, second, catalog } = await moving(t, () => new Promise<SessionAttachReply>(() => undefined));
  loseStore(first);
  await waitFor(() => second.requests.some((r) => r.type === 'control.version'), { what: 'the connection to the next server', timeoutMs: 5000 });
  const started = Date.now();
  const outcome = await catalog.relay('n1', { op: 'stat', path: '/x' }).catch((error: unknown) => error);
  const waited = Date.now() - started;
  t.equal(outcome instanceof FsError && outcome.errno, 'ENOTCONN', 'ENOTCONN once the wait is over');
  t.ok(waited >= 1500 && waited < 4000, `it waited about MOVE_WAIT_MS (${waited} ms)`);
});
