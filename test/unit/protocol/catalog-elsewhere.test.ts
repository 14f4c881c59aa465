// CatalogElsewhere with stand-in connections: a store outage moves a catalog follower to the first
// other server that accepts a connection, or it stays and says so once a session.
import t from 'tap';
import { CatalogElsewhere, noticeText, type ElsewhereNotice } from '../../../src/protocol/catalog-elsewhere.js';
import type { ControlClient } from '../../../src/protocol/control-client.js';
import type { ReconnectLoop } from '../../../src/protocol/reconnect-loop.js';

function standIn(): ControlClient & { ended: boolean } {
  const client = {
    ended: false,
    get isOpen() {
      return !client.ended;
    },
    terminate() {
      client.ended = true;
    },
    retire() {
      client.ended = true;
    },
  };
  return client as unknown as ControlClient & { ended: boolean };
}

function follower(urls: string[], accepts: (url: string) => boolean, timing = { backoffMs: 10, outageOverMs: 6000 }) {
  const said: ElsewhereNotice[] = [];
  const handedOver: string[] = [];
  const trials = new Map<string, ControlClient & { ended: boolean }>();
  const loop = { url: urls[0], stopped: false, handOver: (url: string) => handedOver.push(url) } as unknown as ReconnectLoop;
  const elsewhere = new CatalogElsewhere({
    urls,
    connect: async (url) => {
      if (!accepts(url)) throw new Error(`${url} refused: HTTP 503`);
      const client = standIn();
      trials.set(url, client);
      return client;
    },
    loop,
    say: (notice) => said.push(notice),
    backoffMs: timing.backoffMs,
    backoffMaxMs: Math.max(40, timing.backoffMs),
    outageOverMs: timing.outageOverMs,
  });
  return { elsewhere, said, handedOver, trials };
}

t.test('the first other server that accepts a connection takes over; the session ends as a move', async (t) => {
  const { elsewhere, said, handedOver, trials } = follower(['ws://a', 'ws://b', 'ws://c'], (url) => url === 'ws://c');
  const session = standIn();
  await elsewhere.notice('ws://a', session, 'etcd unreachable');
  t.same(handedOver, ['ws://c'], 'the loop goes to c next');
  t.same(said, [{ kind: 'moving', from: 'ws://a', to: 'ws://c', why: 'etcd unreachable' }]);
  t.ok(session.ended, 'the session on a ends at once');
  t.ok(trials.get('ws://c')?.ended, "the trial connection is closed (the loop connects with the session's handlers)");
  t.ok(elsewhere.takeMoving(), 'its end is a move, not a lost connection');
  t.notOk(elsewhere.takeMoving(), 'taken once: the next session, should it fail, ends as a failure (WorldFS then shows ENOTCONN)');
  t.equal(
    noticeText(said[0] as ElsewhereNotice, 'the catalog shown does not change until it is back'),
    'the control store of ws://a is unavailable (etcd unreachable); moving to ws://c, whose store answers',
  );
});

t.test('no other server accepts, or there is none: it stays, said once a session', async (t) => {
  const { elsewhere, said, handedOver } = follower(['ws://a', 'ws://b'], () => false);
  const session = standIn();
  await elsewhere.notice('ws://a', session, 'no quorum');
  await new Promise((resolve) => setTimeout(resolve, 20)); // past the pause: searched again
  await elsewhere.notice('ws://a', session, 'no quorum');
  t.same(handedOver, [], 'no move');
  t.notOk(session.ended, 'the session stays');
  t.equal(said.length, 1, 'said once');
  t.equal(
    noticeText(said[0] as ElsewhereNotice, 'the catalog shown does not change until it is back'),
    "the control store of ws://a is unavailable (no quorum): the catalog shown does not change until it is back; no other server's store answered (ws://b: ws://b refused: HTTP 503)",
  );
  const alone = follower(['ws://a'], () => true);
  await alone.elsewhere.notice('ws://a', standIn(), 'no quorum');
  t.same(
    alone.said.map((n) => noticeText(n, 'the catalog shown does not change until it is back')),
    ['the control store of ws://a is unavailable (no quorum): the catalog shown does not change until it is back'],
    'one URL: it says so, and tries nothing',
  );
});

t.test('the end of an outage said comes once the notices stop, also while no search is due', async (t) => {
  // Searches far apart (the pause after one that found nothing): the notices between find none due.
  const { elsewhere, said } = follower(['ws://a', 'ws://b'], () => false, { backoffMs: 60_000, outageOverMs: 60 });
  const session = standIn();
  for (let i = 0; i < 8; i++) {
    await elsewhere.notice('ws://a', session, 'no quorum');
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
  t.same(
    said.map((n) => n.kind),
    ['staying'],
    'notices every 25 ms for 200 ms, longer than the 60 ms that end an outage: not over',
  );
  await new Promise((resolve) => setTimeout(resolve, 150));
  t.same(
    said.map((n) => n.kind),
    ['staying', 'back'],
    'the notices stopped: over, said once',
  );
  elsewhere.stop();
});

t.test('stop() ends a session handed over whose requests in flight are still being answered (its socket kept the process up)', async (t) => {
  const { elsewhere } = follower(['ws://a', 'ws://b'], () => true);
  const calls: string[] = [];
  let socketClosed = false;
  const session = {
    isOpen: true,
    get socketClosed() {
      return socketClosed;
    },
    retire: () => void calls.push('retire'),
    terminate: () => {
      calls.push('terminate');
      socketClosed = true;
    },
  } as unknown as ControlClient;
  await elsewhere.notice('ws://a', session, 'etcd unreachable');
  t.same(calls, ['retire'], 'moved: retired, its socket left for the replies in flight');
  elsewhere.stop();
  t.same(calls, ['retire', 'terminate'], 'stopped: ended, not waited for');
});
