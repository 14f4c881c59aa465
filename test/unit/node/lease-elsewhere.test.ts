// LeaseElsewhere with stand-in connections: the search's order and its end when the node stops.
import t from 'tap';
import { pino } from 'pino';
import type { ControlClient } from '../../../src/protocol/control-client.js';
import { LeaseElsewhere } from '../../../src/node/lease-elsewhere.js';

/** A connection whose lease refresh answers after `ms` (rejects when `refuses`), and says when it was ended. */
function standIn(ms: number, refuses = false): ControlClient & { ended: boolean } {
  const client = {
    ended: false,
    isOpen: true,
    request: () => new Promise((resolve, reject) => setTimeout(() => (refuses ? reject(new Error('unavailable')) : resolve({ lease_ttl_ms: 60_000 })), ms)),
    terminate() {
      client.ended = true;
    },
  };
  return client as unknown as ControlClient & { ended: boolean };
}

const log = pino({ level: 'silent' });

t.test('the first other server that refreshes the lease is the answer, still connected; the own server is asked first', async (t) => {
  const opened: string[] = [];
  const clients = new Map([
    ['ws://b', standIn(10, true)],
    ['ws://c', standIn(10)],
  ]);
  const search = new LeaseElsewhere({
    urls: ['ws://a', 'ws://b', 'ws://c'],
    nodeId: 'n',
    open: async (url) => (opened.push(url), clients.get(url) as ControlClient),
    backoffMs: 100,
    backoffMaxMs: 1000,
    log,
  });
  const found = await search.search('ws://a', standIn(10, true), 'store lost', () => true);
  t.equal(found?.url, 'ws://c');
  t.same(opened, ['ws://b', 'ws://c']);
  t.ok(clients.get('ws://b')?.ended, 'the refusing one was ended');
  t.notOk(clients.get('ws://c')?.ended, 'the one that refreshed stays connected');
});

t.test('stop() during a search: the server being tried is dropped and no further one is tried', async (t) => {
  const opened: string[] = [];
  const slow = standIn(300);
  const search = new LeaseElsewhere({
    urls: ['ws://a', 'ws://b', 'ws://c'],
    nodeId: 'n',
    open: async (url) => (opened.push(url), url === 'ws://b' ? slow : standIn(10)),
    backoffMs: 100,
    backoffMaxMs: 1000,
    log,
  });
  const searching = search.search('ws://a', standIn(10, true), 'store lost', () => true);
  setTimeout(() => search.stop(), 100);
  t.equal(await searching, undefined, 'nothing found');
  t.same(opened, ['ws://b'], 'ws://c never tried');
  t.ok(slow.ended, 'the trial connection was ended');
  t.equal(await search.search('ws://a', standIn(10, true), 'again', () => true), undefined, 'no search after stop');
  t.same(opened, ['ws://b']);
});

t.test('a search that found none: said while the session is on that server, not once it left it (a failover meanwhile)', async (t) => {
  for (const current of [true, false]) {
    const lines: string[] = [];
    const search = new LeaseElsewhere({
      urls: ['ws://a', 'ws://b'],
      nodeId: 'n',
      open: async () => standIn(10, true),
      backoffMs: 100,
      backoffMaxMs: 1000,
      log: pino({ level: 'warn' }, { write: (line: string) => void lines.push((JSON.parse(line) as { msg: string }).msg) }),
    });
    t.equal(await search.search('ws://a', standIn(10, true), 'store lost', () => current), undefined, 'nothing found');
    t.same(
      lines,
      current ? ['control store of ws://a unavailable, and no other server refreshed the lease: keeping this session; looking again in 100 ms or more'] : [],
      current ? 'said while on ws://a' : 'nothing said of a server the session left',
    );
  }
});
