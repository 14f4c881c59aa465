// RequestFlow (src/control/request-flow.ts): a connection's requests take at most TURN_BUDGET_MS of a
// turn of the loop, reading paused while frames wait for their turn or too much is unsent (never for
// requests that run long), and missed pongs counted only when the peer is to blame.
import { EventEmitter } from 'node:events';
import t from 'tap';
import { PAUSE_UNSENT_BYTES, RequestFlow, TURN_BUDGET_MS } from '../../../src/control/request-flow.js';

class FakeSocket extends EventEmitter {
  bufferedAmount = 0;
  bytesWritten = 0;
  paused = false;
  pause(): void {
    this.paused = true;
  }
  resume(): void {
    this.paused = false;
  }
}

const nextTurn = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));
const frame = (n: number): Buffer => Buffer.from(String(n));

/** Keeps the loop busy for `ms`: a request that costs that much. */
const busy = (ms: number): void => {
  const end = performance.now() + ms;
  while (performance.now() < end);
};

t.test('a burst of cheap requests is served in one turn, in order: they go out together', (t) => {
  const socket = new FakeSocket();
  const served: string[] = [];
  const flow = new RequestFlow(socket, socket, (data) => void served.push(data.toString()));
  for (let n = 0; n < 3; n++) flow.receive(frame(n), false);
  t.same(served, ['0', '1', '2'], 'all at once');
  t.notOk(socket.paused, 'the socket is read on');
  t.end();
});

t.test(`a burst of costly requests is served one per ${TURN_BUDGET_MS} ms turn of the loop, in order, with the socket paused meanwhile`, async (t) => {
  const socket = new FakeSocket();
  const served: string[] = [];
  const flow = new RequestFlow(socket, socket, (data) => {
    served.push(data.toString());
    busy(TURN_BUDGET_MS);
    return undefined;
  });
  for (let n = 0; n < 3; n++) flow.receive(frame(n), false);
  t.same(served, ['0'], 'the first at once');
  t.ok(socket.paused, 'the rest wait: the socket is not read');
  await nextTurn();
  t.same(served, ['0', '1']);
  await nextTurn();
  t.same(served, ['0', '1', '2']);
  t.notOk(socket.paused, 'read again once nothing waits');
});

t.test('requests that run long do not stop the reading: the pings and other requests of the peer are read on', async (t) => {
  const socket = new FakeSocket();
  const ends: Array<() => void> = [];
  let served = 0;
  const flow = new RequestFlow(socket, socket, () => {
    served++;
    return new Promise<void>((resolve) => ends.push(resolve));
  });
  for (let n = 0; n < 200; n++) {
    flow.receive(frame(n), false);
    await nextTurn();
  }
  t.equal(served, 200, 'every one served, none waiting for another to end (a relay to a hung node)');
  t.notOk(socket.paused, 'the socket is read on');
  t.equal(flow.holding, undefined);
  t.ok(flow.pongMissable(), 'a pong the peer does not send counts against it');
  let settled = false;
  void flow.settled().then(() => (settled = true));
  await nextTurn();
  t.notOk(settled, 'settled waits for the requests running');
  ends.forEach((end) => end());
  await nextTurn();
  t.ok(settled, 'then settles');
});

t.test(`more than ${PAUSE_UNSENT_BYTES} bytes unsent: not read until the socket drains`, async (t) => {
  const socket = new FakeSocket();
  let served = 0;
  const flow = new RequestFlow(socket, socket, () => {
    served++;
    socket.bufferedAmount += 2 * PAUSE_UNSENT_BYTES; // a big reply
    return undefined;
  });
  flow.receive(frame(0), false);
  await nextTurn();
  flow.receive(frame(1), false);
  await nextTurn();
  t.equal(served, 1, 'the second waits for the first reply to be written');
  t.equal(flow.holding, 'unsent');
  t.ok(socket.paused);
  t.ok(flow.pongMissable(), 'a peer that reads nothing is to blame for its pongs');
  socket.bytesWritten += 1000;
  socket.bufferedAmount += 5000; // replies of requests still running: more unsent, though it reads
  t.notOk(flow.pongMissable(), 'one that reads (more bytes written than at the last ping) is not');
  t.ok(flow.pongMissable(), 'until it stops reading again');
  socket.bufferedAmount = 0;
  socket.emit('drain');
  await nextTurn();
  t.equal(served, 2, 'served after the drain');
});

t.test('settled waits for the frames read and not served yet; once closed, unsent bytes no longer hold them', async (t) => {
  const socket = new FakeSocket();
  const served: string[] = [];
  const flow = new RequestFlow(socket, socket, (data) => {
    served.push(data.toString());
    socket.bufferedAmount = 2 * PAUSE_UNSENT_BYTES; // a reply the peer never reads
    return undefined;
  });
  flow.receive(frame(0), false);
  flow.receive(frame(1), false);
  let settled = false;
  void flow.settled().then(() => (settled = true));
  await nextTurn();
  t.same(served, ['0'], 'the second waits for the unsent bytes');
  t.notOk(settled, 'and settled waits for it');
  flow.closed();
  await nextTurn();
  await nextTurn();
  t.same(served, ['0', '1'], 'served once the socket closed (a close cancels nothing)');
  t.ok(settled, 'then settled');
});
