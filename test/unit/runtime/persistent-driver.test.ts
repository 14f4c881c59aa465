// PersistentDriver's line protocol against a scripted DriverProcess (no process, no FUSE), and
// RemoteDriverProcess over real Unix sockets: queueing before the driver's stdin connection arrives,
// EOF on its stdout connection, and answers still in it when its exit is reported.
import t, { type Test } from 'tap';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { randomBytes } from 'node:crypto';
import type { DriverProcess } from '../../../src/runtime/driver-process.js';
import { PersistentDriver } from '../../../src/runtime/persistent-driver.js';
import { RemoteDriverProcess } from '../../../src/runtime/remote-driver-process.js';
import type { DriverSpec, RunResult } from '../../../src/runtime/run-result.js';
import { settledWithin } from '../../helpers/settle.js';

const ENV = {};
const spec = (over: Partial<DriverSpec> = {}): DriverSpec => ({
  file: '/drivers/p',
  args: [],
  cwd: '/tmp',
  env: ENV,
  invocationId: '1-0001',
  input: Buffer.from('{"n":1}'),
  timeoutMs: 5_000,
  killGraceMs: 100,
  maxOutputBytes: 1 << 20,
  persistentKey: 'p',
  ...over,
});

/** A DriverProcess the test drives: sees every request line, answers and dies on command. */
class ScriptedProcess implements DriverProcess {
  readonly lines: Array<{ id: string; payload: unknown }> = [];
  readonly terminations: number[] = [];
  readonly exited: Promise<string>;
  readonly stdoutEnded: Promise<void>;
  #listeners: Array<(chunk: Buffer) => void> = [];
  die!: (how: string) => void;
  closeStdout!: () => void;

  constructor() {
    this.exited = new Promise((resolve) => (this.die = resolve));
    this.stdoutEnded = new Promise((resolve) => (this.closeStdout = resolve));
  }

  write(data: string): void {
    for (const line of data.split('\n').filter((l) => l !== '')) this.lines.push(JSON.parse(line) as { id: string; payload: unknown });
  }

  onStdout(listener: (chunk: Buffer) => void): void {
    this.#listeners.push(listener);
  }

  say(output: string | Buffer): void {
    for (const listener of this.#listeners) listener(Buffer.from(output));
  }

  terminate(graceMs: number): void {
    this.terminations.push(graceMs);
  }
}

function scripted(): { launched: ScriptedProcess[]; launch: (s: DriverSpec) => ScriptedProcess } {
  const launched: ScriptedProcess[] = [];
  return {
    launched,
    launch: () => {
      const p = new ScriptedProcess();
      launched.push(p);
      return p;
    },
  };
}

/** A driver with one request sent to its first process (`run`, not answered yet). */
async function sentOne(): Promise<{ launched: ScriptedProcess[]; driver: PersistentDriver; run: Promise<RunResult> }> {
  const { launched, launch } = scripted();
  const driver = new PersistentDriver(spec(), launch);
  const run = driver.run(spec());
  await tick();
  return { launched, driver, run };
}

/** A driver whose first process died young: the next request waits out the first backoff step (100 ms). */
async function diedYoung(): Promise<{ launched: ScriptedProcess[]; driver: PersistentDriver }> {
  const { launched, driver, run } = await sentOne();
  launched[0]?.die('exited with code 1');
  await run;
  return { launched, driver };
}

const tick = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

t.test('answers match requests by id, in any order and split across chunks', async (t) => {
  const { launched, launch } = scripted();
  const driver = new PersistentDriver(spec(), launch);
  const first = driver.run(spec({ input: Buffer.from('{"n":1}') }));
  const second = driver.run(spec({ input: Buffer.from('{"n":2}') }));
  await tick();
  t.equal(launched.length, 1, 'one process for both');
  const [a, b] = launched[0]?.lines ?? [];
  t.same([a?.payload, b?.payload], [{ n: 1 }, { n: 2 }]);
  launched[0]?.say(`{"id":"${b?.id}","ok":true,"result":{"r":2}}\n{"id":"${a?.id}",`);
  launched[0]?.say(`"ok":true,"result":{"r":1}}\n`);
  const [r1, r2] = await Promise.all([first, second]);
  t.equal(r1.state, 'ok');
  t.equal(r1.stdout.toString(), '{"r":1}\n');
  t.equal(r2.stdout.toString(), '{"r":2}\n');
});

t.test("ok:false is an error with the driver's text; the process is kept", async (t) => {
  const { launched, run } = await sentOne();
  launched[0]?.say(`{"id":"${launched[0]?.lines[0]?.id}","ok":false,"error":"no such thing"}\n`);
  const result = await run;
  t.equal(result.state, 'error');
  t.equal(result.shortMessage, 'no such thing');
  t.same(launched[0]?.terminations, [], 'not terminated');
});

t.test('an answer nested too deeply to be stored again fails its request, not the daemon; the process is kept', async (t) => {
  const { launched, launch } = scripted();
  const driver = new PersistentDriver(spec({ maxOutputBytes: 1 << 22 }), launch);
  const runs = [driver.run(spec()), driver.run(spec()), driver.run(spec())];
  await tick();
  const [a, b, c] = launched[0]?.lines ?? [];
  // Valid JSON at any depth for JSON.parse; JSON.stringify runs out of stack long before 200000 levels.
  const deep = `${'['.repeat(200_000)}${']'.repeat(200_000)}`;
  launched[0]?.say(`{"id":"${a?.id}","ok":true,"result":${deep}}\n{"id":"${b?.id}","ok":false,"error":${deep}}\n`);
  launched[0]?.say(`{"id":"${c?.id}","ok":true,"result":{"r":3}}\n`);
  const [ra, rb, rc] = await Promise.all(runs);
  t.match(ra, { state: 'error', shortMessage: `/drivers/p (persistent) answered request ${a?.id} with a result nested too deeply to be stored` });
  t.match(rb, { state: 'error', shortMessage: `/drivers/p (persistent) answered request ${b?.id} with ok:false and an error nested too deeply to be shown` });
  t.equal(rc?.stdout.toString(), '{"r":3}\n', 'the next answer of the same process is taken');
  t.same(launched[0]?.terminations, [], 'not terminated');
});

t.test('lines that are JSON but no object (null, a number, a string) are ignored, not read as answers: the daemon goes on', async (t) => {
  const { launched, run } = await sentOne();
  // `null` used to throw reading its id in the data handler, and the daemon died.
  launched[0]?.say('null\n7\n"text"\n');
  launched[0]?.say(`{"id":"${launched[0]?.lines[0]?.id}","ok":true,"result":{"after":true}}\n`);
  t.equal((await run).stdout.toString(), '{"after":true}\n', 'the answer after them is taken');
  t.same(launched[0]?.terminations, [], 'not terminated');
});

t.test('a death fails the requests in flight with how it died and the ignored lines; the next run starts a new process', async (t) => {
  const { launched, driver, run } = await sentOne();
  launched[0]?.say('Traceback: not json\n');
  launched[0]?.die('exited with code 3: boom');
  const result = await run;
  t.equal(result.state, 'error');
  t.equal(result.shortMessage, '/drivers/p (persistent) exited with code 3: boom (1 stdout line(s) that were not JSON objects were ignored)');
  // It died young: the next start waits out the first backoff step.
  const next = driver.run(spec());
  await new Promise((resolve) => setTimeout(resolve, 150));
  t.equal(launched.length, 2, 'a new process');
  launched[1]?.say(`{"id":"${launched[1]?.lines[0]?.id}","ok":true}\n`);
  t.equal((await next).stdout.toString(), '{}\n');
});

t.test('a driver that closes its stdout and runs on: its requests fail within a second, it is terminated, the next run starts a new one', async (t) => {
  const { launched, launch } = scripted();
  const driver = new PersistentDriver(spec({ timeoutMs: 60_000 }), launch);
  const started = Date.now();
  const run = driver.run(spec({ timeoutMs: 60_000 }));
  await tick();
  launched[0]?.closeStdout();
  const result = await run;
  t.equal(result.state, 'error');
  t.equal(result.shortMessage, '/drivers/p (persistent) closed its stdout but kept running; it was stopped');
  t.ok(Date.now() - started < 10_000, 'long before timeout_ms');
  t.same(launched[0]?.terminations, [100], 'terminated with kill_grace_ms');
  // Like a death young: the next start waits out the first backoff step.
  const next = driver.run(spec());
  await new Promise((resolve) => setTimeout(resolve, 150));
  t.equal(launched.length, 2, 'a new process');
  launched[0]?.die('killed by SIGTERM');
  launched[1]?.say(`{"id":"${launched[1]?.lines[0]?.id}","ok":true}\n`);
  t.equal((await next).state, 'ok', 'the old exit does not touch the new process');
});

t.test('EOF on stdout followed by the exit: the requests fail naming the exit, not the closed stdout', async (t) => {
  const { launched, run } = await sentOne();
  launched[0]?.closeStdout();
  await new Promise((resolve) => setTimeout(resolve, 50));
  launched[0]?.die('exited with code 3: boom');
  t.equal((await run).shortMessage, '/drivers/p (persistent) exited with code 3: boom');
  await new Promise((resolve) => setTimeout(resolve, 1100));
  t.same(launched[0]?.terminations, [], 'not terminated: it was gone already');
});

t.test('a timeout terminates the process with kill_grace_ms and fails the others as restarted', async (t) => {
  const { launched, launch } = scripted();
  const driver = new PersistentDriver(spec(), launch);
  const hung = driver.run(spec({ timeoutMs: 50, killGraceMs: 77 }));
  const other = driver.run(spec({ timeoutMs: 5_000, killGraceMs: 77 }));
  const [a, b] = await Promise.all([hung, other]);
  t.equal(a.state, 'timeout');
  t.match(a.shortMessage, /did not answer request 1 within 50 ms/);
  t.equal(b.state, 'error');
  t.match(b.shortMessage, /restarted: request 1 timed out/);
  t.same(launched[0]?.terminations, [77]);
});

t.test('changed settings restart the process before the next request', async (t) => {
  const { launched, launch } = scripted();
  const driver = new PersistentDriver(spec(), launch);
  void driver.run(spec());
  await tick();
  void driver.run(spec({ args: ['--other'] }));
  await tick();
  t.equal(launched.length, 2);
  t.same(launched[0]?.terminations, [100]);
  t.equal(launched[1]?.lines.length, 1, 'the new request went to the new process');
  driver.restart('test over');
});

t.test('a reload that keeps what starts the process (a new but equal environment) keeps it and the requests in flight', async (t) => {
  const { launched, launch } = scripted();
  const driver = new PersistentDriver(spec({ env: { A: '1' } }), launch);
  const inFlight = driver.run(spec({ env: { A: '1' } }));
  await tick();
  // What a reload of an edited manifest (timeout_ms, help_md...) hands over: new objects, same values.
  const afterReload = driver.run(spec({ env: { A: '1' }, args: [], timeoutMs: 4_000 }));
  await tick();
  t.equal(launched.length, 1, 'the same process');
  t.same(launched[0]?.terminations, [], 'not terminated');
  const [a, b] = launched[0]?.lines ?? [];
  launched[0]?.say(`{"id":"${a?.id}","ok":true}\n{"id":"${b?.id}","ok":true}\n`);
  t.same([(await inFlight).state, (await afterReload).state], ['ok', 'ok'], 'both answered');
  for (const env of [{ A: '2' }, { B: '1' }] as Array<Record<string, string>>) {
    const before = launched.length;
    const changed = driver.run(spec({ env }));
    await tick();
    t.equal(launched.length, before + 1, `environment ${JSON.stringify(env)}: a new process`);
    t.same(launched[before - 1]?.terminations, [100], 'the old one was terminated');
    driver.restart('next case');
    t.equal((await changed).state, 'error');
  }
});

t.test('requests cancelled together (control/cancel, a stop) all end cancelled; the process restarts once; others fail', async (t) => {
  const { launched, launch } = scripted();
  const driver = new PersistentDriver(spec(), launch);
  const controllers = [new AbortController(), new AbortController(), new AbortController()];
  const cancelled = controllers.map((c) => driver.run(spec(), c.signal));
  const other = driver.run(spec());
  await tick();
  t.equal(launched[0]?.lines.length, 4, 'all four requests in flight');
  // As JobTable.cancel does: one job after another, in one synchronous loop.
  for (const controller of controllers) controller.abort();
  const outcomes = await Promise.all(cancelled);
  t.same(
    outcomes.map((o) => o.state),
    ['cancelled', 'cancelled', 'cancelled'],
    'none is failed by the restart the first cancel causes',
  );
  t.match(outcomes[2]?.shortMessage, /^request 3 was cancelled; the persistent driver was restarted$/);
  t.match(await other, { state: 'error', shortMessage: 'the persistent driver was restarted: request 1 was cancelled' }, 'a request not cancelled fails');
  t.same(launched[0]?.terminations, [100], 'terminated once');
  const next = driver.run(spec());
  await tick();
  t.equal(launched.length, 2, 'the next request starts a new process at once');
  t.same(launched[1]?.terminations, [], 'which the earlier cancels leave alone');
  launched[1]?.say(`{"id":"${launched[1]?.lines[0]?.id}","ok":true}\n`);
  t.equal((await next).state, 'ok');
});

t.test('a cancel during the restart backoff ends the request at once, unsent; the others go on', async (t) => {
  const { launched, driver } = await diedYoung();
  // It died young: the next requests wait out the backoff before a new process starts.
  const controller = new AbortController();
  const cancelled = driver.run(spec({ timeoutMs: 1_000, input: Buffer.from('{"cancel":"me"}') }), controller.signal);
  const other = driver.run(spec({ input: Buffer.from('{"keep":"me"}') }));
  await tick();
  t.equal(launched.length, 1, 'still in backoff');
  controller.abort();
  const outcome = await settledWithin(cancelled, 50, 'still waiting');
  t.match(outcome, { state: 'cancelled', shortMessage: 'the request was cancelled before it was sent to the persistent driver' }, 'cancelled at once');
  await new Promise((resolve) => setTimeout(resolve, 150));
  t.equal(launched.length, 2, 'the backoff over, a new process serves the other request');
  t.same(
    launched[1]?.lines.map((l) => l.payload),
    [{ keep: 'me' }],
    'the cancelled request was never sent',
  );
  t.same(launched[1]?.terminations, [], 'and the new process was not restarted for it');
  launched[1]?.say(`{"id":"${launched[1]?.lines[0]?.id}","ok":true}\n`);
  t.equal((await other).state, 'ok');
});

t.test('a timeout_ms shorter than the restart backoff left: timeout, never sent, and no process started for it', async (t) => {
  const { launched, driver } = await diedYoung();
  // It died young: 100 ms of backoff, more than this request's whole timeout_ms.
  const outcome = await driver.run(spec({ timeoutMs: 30 }));
  t.match(outcome, {
    state: 'timeout',
    shortMessage: '/drivers/p (persistent) was still waiting out its restart backoff after timeout_ms (30 ms): the request was never sent',
  });
  t.equal(launched.length, 1, 'no process started only to be killed');
});

t.test('a request cancelled before it reaches the driver is not sent', async (t) => {
  const { launched, launch } = scripted();
  const driver = new PersistentDriver(spec(), launch);
  const controller = new AbortController();
  controller.abort();
  const outcome = await driver.run(spec({ timeoutMs: 1_000 }), controller.signal);
  t.equal(outcome.state, 'cancelled');
  t.equal(launched.length, 0, 'no process started for it');
});

t.test('an answer past max_output_bytes restarts the process', async (t) => {
  const { launched, launch } = scripted();
  const driver = new PersistentDriver(spec({ maxOutputBytes: 10 }), launch);
  const run = driver.run(spec({ maxOutputBytes: 10 }));
  await tick();
  launched[0]?.say('{"id":"1","ok":true,"result":"far too long"}\n');
  const result = await run;
  t.equal(result.state, 'error');
  t.match(result.shortMessage, /an answer exceeded max_output_bytes \(10\)/);
  t.same(launched[0]?.terminations, [100]);
});

t.test('max_output_bytes counts bytes, not characters', async (t) => {
  const line = '{"id":"1","ok":true,"result":"éééééééééé"}';
  const cap = line.length + 4; // enough characters, too few bytes (each é is two)
  t.ok(Buffer.byteLength(line) > cap);
  const { launched, launch } = scripted();
  const driver = new PersistentDriver(spec({ maxOutputBytes: cap }), launch);
  const run = driver.run(spec({ maxOutputBytes: cap }));
  await tick();
  launched[0]?.say(`${line}\n`);
  t.match((await run).shortMessage, new RegExp(`an answer exceeded max_output_bytes \\(${cap}\\)`));
});

t.test('a character split between two chunks is decoded whole', async (t) => {
  const { launched, driver, run } = await sentOne();
  const bytes = Buffer.from('{"id":"1","ok":true,"result":"€"}\n');
  const euro = bytes.indexOf(0xe2);
  launched[0]?.say(bytes.subarray(0, euro + 1));
  launched[0]?.say(bytes.subarray(euro + 1));
  const result = await run;
  t.equal(result.state, 'ok');
  t.equal(result.stdout.toString('utf8'), '"€"\n');
  driver.restart('test over');
});

async function socketPair(t: Test): Promise<{ near: Socket; far: Socket }> {
  const path = `\0acheron-test-${randomBytes(6).toString('hex')}`;
  const server: Server = createServer();
  await new Promise<void>((resolve) => server.listen(path, resolve));
  const accepted = new Promise<Socket>((resolve) => server.once('connection', resolve));
  const far = connect({ path });
  const near = await accepted;
  far.setEncoding('utf8');
  t.teardown(() => {
    near.destroy();
    far.destroy();
    server.close();
  });
  return { near, far };
}

t.test('RemoteDriverProcess: writes before the stdin connection are queued, in order; the stdout hello remainder is output', async (t) => {
  const stdin = await socketPair(t);
  const stdout = await socketPair(t);
  const remote = new RemoteDriverProcess(() => undefined);
  const out: Buffer[] = [];
  remote.onStdout((chunk) => out.push(chunk));
  remote.write('a\n');
  remote.write('b\n');
  let received = '';
  stdin.far.on('data', (chunk: string) => (received += chunk));
  remote.attach('stdout', stdout.near, Buffer.from('early answer\n'));
  remote.write('c\n');
  remote.attach('stdin', stdin.near, Buffer.alloc(0));
  remote.write('d\n');
  stdout.far.write('later answer\n');
  stdin.far.write('written to stdin: dropped\n');
  await new Promise((resolve) => setTimeout(resolve, 50));
  t.equal(received, 'a\nb\nc\nd\n');
  t.same(Buffer.concat(out).toString(), 'early answer\nlater answer\n');
});

t.test('RemoteDriverProcess: the end of the stdout connection alone is stdoutEnded, while stdin stays open', async (t) => {
  const stdin = await socketPair(t);
  const stdout = await socketPair(t);
  const remote = new RemoteDriverProcess(() => undefined);
  remote.attach('stdin', stdin.near, Buffer.alloc(0));
  remote.attach('stdout', stdout.near, Buffer.alloc(0));
  stdout.far.end();
  await remote.stdoutEnded;
  t.pass('stdoutEnded resolved');
  t.notOk(stdin.near.destroyed, 'stdin is still open');
});

t.test('RemoteDriverProcess: output still in the stdout connection when the exit is reported arrives before exited', async (t) => {
  const stdin = await socketPair(t);
  const stdout = await socketPair(t);
  const remote = new RemoteDriverProcess(() => undefined);
  let out = '';
  remote.onStdout((chunk) => (out += chunk.toString()));
  remote.attach('stdin', stdin.near, Buffer.alloc(0));
  remote.attach('stdout', stdout.near, Buffer.alloc(0));
  remote.gone('exited with code 0');
  stdout.far.end('last answer\n');
  t.equal(await remote.exited, 'exited with code 0');
  t.equal(out, 'last answer\n');
  t.ok(stdin.near.destroyed, 'the stdin connection is closed too');
});

t.test('RemoteDriverProcess: gone before the connections: exited at once; a late connection is closed, writes dropped', async (t) => {
  const { near } = await socketPair(t);
  const terminated: number[] = [];
  const remote = new RemoteDriverProcess((graceMs) => terminated.push(graceMs));
  remote.write('dropped\n');
  remote.gone('could not be started: spawn ENOENT');
  t.equal(await remote.exited, 'could not be started: spawn ENOENT');
  remote.attach('stdin', near, Buffer.alloc(0));
  t.ok(near.destroyed, 'closed');
  remote.terminate(5);
  t.same(terminated, [5], 'terminate goes to the spawner');
});

t.test('stop terminates the process and resolves once it has exited', async (t) => {
  const { launched, driver, run } = await sentOne();
  let stopped = false;
  const stopping = driver.stop('test over').then(() => (stopped = true));
  t.equal((await run).state, 'error', 'the request in flight fails');
  await tick();
  t.notOk(stopped, 'still waiting for the exit');
  t.same(launched[0]?.terminations, [100]);
  launched[0]?.die('killed by SIGTERM');
  await stopping;
  t.ok(stopped);
});
