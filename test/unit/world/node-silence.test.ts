// docs/worldfs.md "Bounds": a node that let a metadata operation outlive the mount's bound, with no
// answer since, gets ETIMEDOUT at once for new metadata operations until it answers anything.
import t from 'tap';
import { FsError } from '../../../src/errors/errno.js';
import { NodeSilence } from '../../../src/world/node-silence.js';
import type { RelayOperation } from '../../../src/world/relay-call.js';

const BOUND = 15_000;

/** A node whose answers the test gives by hand, on a clock the test moves. */
function setup() {
  let now = 1_000_000;
  const waiting: Array<{ operation: RelayOperation; answer: (error?: FsError) => void }> = [];
  const send = (operation: RelayOperation) =>
    new Promise<Record<string, unknown>>((resolve, reject) => {
      waiting.push({ operation, answer: (error) => (error ? reject(error) : resolve({})) });
    });
  const silence = new NodeSilence('n1', BOUND, () => now);
  return { silence, send, waiting, advance: (ms: number) => (now += ms) };
}

const errnoOf = async (promise: Promise<unknown>): Promise<string> =>
  promise.then(
    () => 'ok',
    (error: unknown) => (error instanceof FsError ? error.errno : String(error)),
  );

t.test('a stat left unanswered past the bound: the next metadata operations fail at once; one probe goes out', async (t) => {
  const { silence, send, waiting, advance } = setup();
  const first = silence.relay({ op: 'stat', path: '/services/echo/status.json' }, send);
  first.catch(() => undefined);
  advance(BOUND - 1001);
  t.equal(silence.silentForMs(), undefined, 'not before the bound (less a second: the kernel retries as its timer fires)');
  advance(1001);
  t.equal(silence.silentForMs(), BOUND, 'silent once the bound has passed');
  const second = silence.relay({ op: 'read_file', path: '/services/echo/health.json' }, send);
  t.equal(await errnoOf(second), 'ETIMEDOUT', 'ETIMEDOUT at once');
  await t.rejects(silence.relay({ op: 'list', path: '/fs' }, send), /node n1 has not answered for 15 s/, 'naming how long');
  t.same(
    waiting.map((w) => w.operation),
    [
      { op: 'stat', path: '/services/echo/status.json' },
      { op: 'stat', path: '/services/echo/health.json' },
    ],
    'the first operation, and one probe (a stat) while it is out',
  );
  const open = silence.relay({ op: 'open', path: '/services/echo/status.json', flags: 0 }, send);
  t.equal(waiting.length, 3, 'an open is no metadata operation: it goes out, with its own bound');
  waiting[2]?.answer();
  await open;
  t.equal(silence.silentForMs(), undefined, 'any answer from the node ends the silence');
  const after = silence.relay({ op: 'stat', path: '/x' }, send);
  t.equal(waiting.length, 4, 'and metadata operations go out again');
  waiting[3]?.answer();
  t.equal(await errnoOf(after), 'ok');
});

t.test("the server's ETIMEDOUT is no answer; an EHOSTUNREACH or the node's errno is", async (t) => {
  const { silence, send, waiting, advance } = setup();
  const first = silence.relay({ op: 'stat', path: '/a' }, send);
  advance(BOUND);
  t.equal(await errnoOf(silence.relay({ op: 'stat', path: '/b' }, send)), 'ETIMEDOUT');
  waiting[0]?.answer(new FsError('ETIMEDOUT', 'node n1 did not answer stat /a within 60000 ms'));
  t.equal(await errnoOf(first), 'ETIMEDOUT');
  t.ok(silence.silentForMs() !== undefined, 'still silent after the server gave up on it');
  waiting[1]?.answer(new FsError('ETIMEDOUT', 'the probe too'));
  await new Promise((resolve) => setImmediate(resolve));
  t.equal(await errnoOf(silence.relay({ op: 'stat', path: '/c' }, send)), 'ETIMEDOUT', 'still at once');
  t.equal(waiting.length, 3, 'a new probe once the last one ended');
  waiting[2]?.answer(new FsError('ENOENT', 'no such file'));
  await new Promise((resolve) => setImmediate(resolve));
  t.equal(silence.silentForMs(), undefined, "the node's ENOENT is an answer");

  const late = silence.relay({ op: 'stat', path: '/d' }, send);
  advance(BOUND);
  waiting[3]?.answer(new FsError('EHOSTUNREACH', 'its tunnel closed'));
  t.equal(await errnoOf(late), 'EHOSTUNREACH');
  t.equal(silence.silentForMs(), undefined, 'a relay error ends it too');
});

t.test('a slow operation on a node that answers others meanwhile does not make it silent', async (t) => {
  const { silence, send, waiting, advance } = setup();
  void silence.relay({ op: 'stat', path: '/fs/slow-disk/file' }, send).catch(() => undefined);
  advance(1000);
  const quick = silence.relay({ op: 'stat', path: '/a' }, send);
  waiting[1]?.answer();
  await quick;
  advance(BOUND);
  t.equal(silence.silentForMs(), undefined, 'the node answered after the slow one went out');
  void silence.relay({ op: 'stat', path: '/b' }, send).catch(() => undefined);
  advance(BOUND);
  t.equal(silence.silentForMs(), BOUND, 'until a later operation goes unanswered for the bound');
});

t.test('an invoke waiting for its run does not make the node silent', async (t) => {
  const { silence, send, advance } = setup();
  void silence.relay({ op: 'flush', path: '/services/echo/control/invoke.json', fh: 1 }, send).catch(() => undefined);
  advance(10 * BOUND);
  t.equal(silence.silentForMs(), undefined);
});
