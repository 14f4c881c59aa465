// SPEC §1/§6 `acheron node watch` against a live `acheron control`: one readable line per event
// (seq, time, node, kind, +/~/- services with versions), --json NDJSON, --replay-limit, --since, a
// node filter (a node not in the catalog is named), the start of a watch after a refused server, a
// refusal with its reason and a hint (exit 1), a user's watch of a project that is
// deleted or unknown (exit 1, naming it); and a kill -9 of the server while
// several watch commands run: each reconnects by itself and resumes with no duplicate and no gap; a
// server away for longer than the rounds a first connection gets is waited for.
import t, { type Test } from 'tap';
import { spawn } from 'node:child_process';
import { rename, writeFile } from 'node:fs/promises';
import { createServer, type AddressInfo, type Socket } from 'node:net';
import { join } from 'node:path';
import { ResumingWatcher, SimNode } from '../helpers/catalog-sim.js';
import { acheron, adminRequest, refusingPort, startControl, type RunningControl } from '../helpers/control.js';
import { emitted, type EmittedEvent } from '../helpers/history-validator.js';
import { ACHERON, tempDir } from '../helpers/node.js';
import { q, sh, waitFor, withEnv } from '../helpers/process.js';
import { settledWithin } from '../helpers/settle.js';

interface RunningCli {
  name: string;
  /** Complete stdout lines so far. */
  lines(): string[];
  stderr(): string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  stop(): Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

/** `acheron node watch ...` as a child process; teardown kills it if a test left it running. */
function watchCli(name: string, args: readonly string[]): RunningCli {
  const child = spawn(process.execPath, [ACHERON, 'node', 'watch', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stdout.on('data', (chunk: Buffer) => (out += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (err += chunk.toString()));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once('exit', (code, signal) => resolve({ code, signal })),
  );
  let gone = false;
  void exited.then(() => (gone = true));
  t.teardown(async () => {
    if (!gone) child.kill('SIGKILL');
    await exited;
  });
  return {
    name,
    lines: () => out.split('\n').slice(0, -1),
    stderr: () => err,
    exited,
    stop: () => {
      if (!gone) child.kill('SIGTERM');
      return exited;
    },
  };
}

const seqsOf = (cli: RunningCli): number[] => cli.lines().map((line) => (JSON.parse(line) as { seq: number }).seq);
const humanSeqs = (cli: RunningCli): number[] => cli.lines().map((line) => Number(/^\s*(\d+) /.exec(line)?.[1]));
const printedUpTo = (cli: RunningCli, seqs: (cli: RunningCli) => number[], seq: number): Promise<true> =>
  waitFor(() => seqs(cli).includes(seq), {
    what: `${cli.name} printing seq ${seq} (stdout: ${cli.lines().slice(-3).join(' | ')}; stderr: ${cli.stderr().slice(-300)})`,
    timeoutMs: 30_000,
  });

/** A server URL nobody answers at, and nobody else can take meanwhile. */
const refusingUrl = async (): Promise<string> => `ws://127.0.0.1:${await refusingPort()}`;

/**
 * A control server that lets users watch, node `nodeId` with one service published, and project
 * `projectId` mounting it, `read` and `observe` open (`project` adds to it: a token).
 */
async function userWatchFleet(
  tt: Test,
  nodeId: string,
  projectId: string,
  project: Record<string, unknown> = {},
): Promise<{ open: RunningControl; node: SimNode }> {
  const open = await withEnv({ ACHERON_NODE_SERVICE_WATCH_ALLOW_USER: 'true' }, () => startControl(tt));
  const node = await SimNode.provision(open.url, open.adminToken, nodeId);
  tt.teardown(() => node.peer.socket.terminate());
  node.services.set('s', '1');
  await node.publish();
  await adminRequest(open, 'control.project_upsert', {
    project_id: projectId,
    mounts: [{ node_id: nodeId }],
    access_policy: { actions: { read: 'open', observe: 'open' } },
    ...project,
  });
  return { open, node };
}

const dir = await tempDir(t, 'acheron-watch-cli-');
let control: RunningControl = await startControl(t);
const ports = { ws: Number(new URL(control.url).port), http: Number(new URL(control.httpUrl).port) };
const adminFile = join(dir, 'admin.token');
const userFile = join(dir, 'user.token');
await writeFile(adminFile, control.adminToken + '\n', { mode: 0o600 });
await writeFile(userFile, control.userToken + '\n', { mode: 0o600 });
const conn = (tokenFile = adminFile): string[] => ['--control-url', control.url, '--token-file', tokenFile];

// The command watches delta events (`include: "delta"`): so does the reference it is compared with.
const reference = new ResumingWatcher('reference', control.adminToken, { since_seq: 0, include: 'delta' });
await reference.connect(control.url);
const w1 = await SimNode.join(control.url, control.dataDir, 'w1');
w1.services.set('a', '1');
w1.services.set('b', '1');
await w1.publish();
w1.services.set('a', '2');
w1.services.delete('b');
await w1.publish();
const w2 = await SimNode.join(control.url, control.dataDir, 'w2');
w2.services.set('z', '1');
await w2.publish();
await reference.reach(5);

const human = watchCli('human', conn());
const json2 = watchCli('--json --replay-limit 2', [...conn(), '--json', '--replay-limit', '2']);
const since2 = watchCli('--json --since 2', [...conn(), '--json', '--since', '2']);
const onlyW2 = watchCli('w2 --json --since 0', ['w2', ...conn(), '--json', '--since', '0']);
const everything = watchCli('--json --since 0', [...conn(), '--json', '--since', '0']);
await Promise.all([
  printedUpTo(human, humanSeqs, 5),
  printedUpTo(json2, seqsOf, 5),
  printedUpTo(since2, seqsOf, 5),
  printedUpTo(onlyW2, seqsOf, 5),
  printedUpTo(everything, seqsOf, 5),
]);
w1.services.set('c', '1');
await w1.publish();
await Promise.all([printedUpTo(human, humanSeqs, 6), printedUpTo(everything, seqsOf, 6)]);

// kill -9 under the running commands; events happen while they are cut off, then after they are back.
await control.kill9();
control = await startControl(t, { dataDir: control.dataDir, ports });
for (const node of [w1, w2]) await node.reconnect(control.url);
w2.services.set('z', '2');
await w2.publish();
await reference.connect(control.url);
await Promise.all([printedUpTo(everything, seqsOf, 7), printedUpTo(onlyW2, seqsOf, 7), printedUpTo(human, humanSeqs, 7)]);
w1.services.delete('a');
await w1.publish();
await reference.reach(8);
await Promise.all([human, json2, since2, everything].map((cli) => printedUpTo(cli, cli === human ? humanSeqs : seqsOf, 8)));
const all: EmittedEvent[] = reference.events.map(emitted);

await t.test('one line per event: seq, time, node, kind, +/~/- services with versions', async (tt) => {
  const lines = human.lines();
  tt.equal(lines.length, 8, `8 lines (${lines.join(' | ')})`);
  const expected = [
    [1, 'w1 online \\(replay\\)'],
    [2, 'w1 upsert \\(replay\\) \\+a@1 \\+b@1'],
    [3, 'w1 upsert \\(replay\\) ~a@1->2 -b@1'],
    [4, 'w2 online \\(replay\\)'],
    [5, 'w2 upsert \\(replay\\) \\+z@1'],
    [6, 'w1 upsert \\+c@1'],
    [7, 'w2 upsert( \\(replay\\))? ~z@1->2'],
    [8, 'w1 upsert( \\(replay\\))? -a@2'],
  ] as const;
  expected.forEach(([seq, rest], index) => {
    const time = new Date(all[seq - 1]?.timestamp_ms as number).toISOString().replace(/\./g, '\\.');
    tt.match(lines[index], new RegExp(`^ *${seq} ${time} ${rest}$`), `seq ${seq}`);
  });
});

await t.test('--json prints NDJSON: each line the delta event as emitted', async (tt) => {
  const lines = json2.lines().map((line) => JSON.parse(line) as Record<string, unknown>);
  const update = everything
    .lines()
    .map((line) => JSON.parse(line) as Record<string, unknown>)
    .find((e) => e.seq === 3);
  tt.match(
    update,
    {
      node_id: 'w1',
      kind: 'upsert',
      service_delta: { updated: [{ service_id: 'a', version: '2', previous_version: '1' }], removed: [{ service_id: 'b', version: '1' }] },
    },
    'seq 3: the delta',
  );
  tt.same(
    (update?.changed_services as Array<{ service_id: string; version: string }>).map((s) => [s.service_id, s.version]),
    [['a', '2']],
    'and the whole descriptor of what it added or updated',
  );
  tt.notOk(update && 'services' in update, 'not the whole catalog');
  tt.same(
    lines.map((e) => e.seq),
    [4, 5, 6, 7, 8],
    '--replay-limit 2: the last two, then live',
  );
  tt.same(
    lines.slice(0, 2).map((e) => e.replay),
    [true, true],
    'the first two are replays',
  );
  tt.equal(lines[2]?.replay, false, 'then live');
  tt.ok(
    lines.every((e) => typeof e.watch_id === 'string'),
    'each names its watch',
  );
  tt.same(
    lines.map((e) => emitted(e)),
    all.filter((e) => e.seq >= 4),
    'contents equal the emitted events',
  );
});

await t.test('--since N prints every event after seq N', async (tt) => {
  tt.same(seqsOf(since2), [3, 4, 5, 6, 7, 8], 'seqs 3..8');
});

await t.test('a node filter prints only that node', async (tt) => {
  tt.same(
    seqsOf(onlyW2),
    all.filter((e) => e.node_id === 'w2').map((e) => e.seq),
    'the w2 events, in order',
  );
  tt.notMatch(onlyW2.stderr(), /no node/, 'w2 is in the catalog: nothing said of it');
});

await t.test('the first server refuses and the next answers: it says where it watches; a node not in the catalog is named', async (tt) => {
  const refusing = await refusingUrl();
  const cli = watchCli('over a refusing server, of an unknown node', ['nobody', '--control-url', `${refusing},${control.url}`, '--token-file', adminFile]);
  await waitFor(() => cli.stderr().includes('no node nobody'), { what: `the watch naming the unknown node (stderr: ${cli.stderr()})` });
  tt.match(
    cli.stderr(),
    new RegExp(`ECONNREFUSED.*; trying ${control.url} in \\d+ ms\nacheron node watch: watching on ${control.url}, from the replay window\n`),
    'after the refusal it said, it says the watch began (before, a gap it had announced never ended on stderr)',
  );
  tt.match(
    cli.stderr(),
    /acheron node watch: no node nobody in the catalog \(yet\): its events are printed once it joins\n$/,
    'and that the node is not there yet',
  );
  tt.same(await cli.stop(), { code: 0, signal: null }, 'it waits for the node until stopped');
});

await t.test('after kill -9 of the server every running watch reconnects and resumes: no duplicate, no gap', async (tt) => {
  for (const [cli, seqs, want] of [
    [everything, seqsOf, all.map((e) => e.seq)],
    [human, humanSeqs, all.map((e) => e.seq)],
    [since2, seqsOf, all.filter((e) => e.seq > 2).map((e) => e.seq)],
    [json2, seqsOf, all.filter((e) => e.seq >= 4).map((e) => e.seq)],
    [onlyW2, seqsOf, all.filter((e) => e.node_id === 'w2').map((e) => e.seq)],
  ] as const) {
    tt.same(seqs(cli), want, `${cli.name}: exactly ${want.join(',')}`);
    tt.match(cli.stderr(), /reconnecting and resuming after seq \d+/, `${cli.name}: said it reconnects`);
    tt.match(cli.stderr(), /watching again on ws:\/\/\S+, resumed after seq \d+\n/, `${cli.name}: and that it watches again`);
  }
  tt.same(
    everything.lines().map((line) => emitted(JSON.parse(line) as Record<string, unknown>)),
    all,
    'contents across the restart equal the emitted events',
  );
});

await t.test('SIGTERM stops a watch with exit 0', async (tt) => {
  for (const cli of [human, json2, since2, onlyW2, everything]) tt.same(await cli.stop(), { code: 0, signal: null }, `${cli.name}: exit 0`);
});

await t.test('| head -n 1 on a quiet fleet: the watch ends once head has gone, not at the next event', async (tt) => {
  // No event comes after the one replayed line: the watch learns of head's exit from the pipe itself.
  const started = Date.now();
  const r = await sh(
    `${q(process.execPath)} ${q(ACHERON)} node watch ${conn().map(q).join(' ')} --replay-limit 1 | head -n 1; echo "status \${PIPESTATUS[*]}"`,
    {
      timeoutMs: 30_000,
    },
  );
  const tookMs = Date.now() - started;
  tt.match(r.stdout, /^ *\d+ .*\nstatus 0 0\n$/, `one event line, then both ended with 0 (${JSON.stringify(r.stdout)}, ${r.stderr.trim()})`);
  tt.ok(tookMs < 20_000, `ended in ${tookMs} ms`);
});

await t.test('a refused watch prints the reason and a hint, and exits 1', async (tt) => {
  const refused = await acheron(['node', 'watch', ...conn(userFile)]);
  tt.equal(refused.code, 1, 'exit 1');
  tt.equal(refused.stdout, '', 'nothing on stdout');
  tt.match(refused.stderr, /^acheron: forbidden: .*ACHERON_NODE_SERVICE_WATCH_ALLOW_USER/, 'the wire code first, then the reason, naming the setting');
  tt.match(refused.stderr, /^hint: .*ACHERON_NODE_SERVICE_WATCH_ALLOW_USER=true/m, 'a hint: the server setting is what refused it');
  // Beyond the head: events the server cannot have delivered (a history lost in a crash), so the CLI starts over.
  const ahead = watchCli('--json --since 999', [...conn(), '--json', '--since', '999', '--replay-limit', '2']);
  await waitFor(() => seqsOf(ahead).length >= 2, { what: `--since 999 starting over (stderr: ${ahead.stderr()})`, timeoutMs: 30_000 });
  tt.match(
    ahead.stderr(),
    /since_seq 999 is ahead of head_seq 8.*list again.*; starting over from the replay window/,
    '--since beyond the head: says why and starts over',
  );
  tt.same(seqsOf(ahead), [7, 8], 'from the replay window (its --replay-limit)');
  tt.same(await ahead.stop(), { code: 0, signal: null }, 'and keeps watching until stopped');
  const badFile = join(dir, 'bad.token');
  await writeFile(badFile, 'not-a-token\n');
  const unauthorized = await acheron(['node', 'watch', ...conn(badFile)]);
  tt.equal(unauthorized.code, 1, 'a bad token: exit 1');
  tt.match(unauthorized.stderr, /^acheron: unauthorized: .*401/, 'says the server refused the token, its wire code first');
});

await t.test('a stop while a server took the connection and never answers: the watch ends at once, not at the 10 s handshake bound', async (tt) => {
  const sockets: Socket[] = [];
  const silent = createServer((socket) => void sockets.push(socket));
  await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
  tt.teardown(() => {
    for (const socket of sockets) socket.destroy();
    return new Promise<void>((resolve) => silent.close(() => resolve()));
  });
  const hung = watchCli('hung server', ['--control-url', `ws://127.0.0.1:${(silent.address() as AddressInfo).port}`, '--token-file', adminFile]);
  await waitFor(() => sockets.length > 0, { what: 'the watch connecting' });
  const stoppedAt = Date.now();
  const exit = await hung.stop();
  const tookMs = Date.now() - stoppedAt;
  tt.same(exit, { code: 0, signal: null }, 'exit 0, as any stop');
  tt.ok(tookMs < 5_000, `ended ${tookMs} ms after SIGTERM`);
});

await t.test('no server answering: says what it tries and when, then gives up after 5 rounds with exit 1', async (tt) => {
  const url = await refusingUrl();
  const gone = await acheron(['node', 'watch', '--control-url', url, '--token-file', adminFile]);
  tt.equal(gone.code, 1, 'exit 1');
  tt.equal(gone.stdout, '', 'nothing on stdout');
  const pauses = [...gone.stderr.matchAll(/ECONNREFUSED.*; trying (\S+) in (\d+) ms/g)];
  tt.equal(pauses.length, 4, `a line for each pause before the last round (stderr: ${gone.stderr})`);
  tt.ok(
    pauses.every((m) => m[1] === url),
    'each names the server it tries next',
  );
  tt.match(
    gone.stderr,
    new RegExp(`^acheron: unavailable: no control server answered \\(5 rounds over 1 URL\\): ${url}: .*ECONNREFUSED`, 'm'),
    'the last line says why it gave up, its wire code first',
  );
});

await t.test('a server away longer than the give-up rounds: a watch that had watched waits for it, then resumes', async (tt) => {
  const cli = watchCli('patient', [...conn(), '--json', '--since', String(all.at(-1)?.seq ?? 0)]);
  w1.services.set('before-outage', '1');
  await w1.publish();
  await waitFor(() => cli.lines().some((line) => line.includes('"before-outage"')), { what: `the watch printing before the outage (stderr: ${cli.stderr()})` });
  await control.kill9();
  // Before it had watched it would end at the fifth round; now the fifth pause is announced like the others.
  await waitFor(() => (cli.stderr().match(/; trying \S+ in \d+ ms/g) ?? []).length >= 5, {
    what: `five rounds refused (stderr: ${cli.stderr().slice(-400)})`,
    timeoutMs: 30_000,
  });
  tt.equal(
    await settledWithin(
      cli.exited.then(() => 'exited'),
      100,
      'running',
    ),
    'running',
    'still running after five rounds',
  );
  control = await startControl(t, { dataDir: control.dataDir, ports });
  await w1.reconnect(control.url);
  w1.services.set('after-outage', '1');
  await w1.publish();
  await waitFor(() => cli.lines().some((line) => line.includes('"after-outage"')), {
    what: `the watch printing after the server came back (stderr: ${cli.stderr().slice(-400)})`,
    timeoutMs: 30_000,
  });
  tt.same(await cli.stop(), { code: 0, signal: null }, 'and it goes on until stopped');
});

await t.test('a rotated token written into --token-file, even after a refusal: the watch reconnects with it and goes on', async (tt) => {
  reference.close();
  const rotating = join(dir, 'rotating.token');
  await writeFile(rotating, control.adminToken + '\n', { mode: 0o600 });
  const cli = watchCli('rotating', [...conn(rotating), '--json', '--since', '8']);
  const printedAdded = (serviceId: string): Promise<true> =>
    waitFor(
      () =>
        cli
          .lines()
          .some((line) =>
            (JSON.parse(line) as { service_delta: { added: Array<{ service_id: string }> } }).service_delta.added.some((e) => e.service_id === serviceId),
          ),
      {
        what: `the watch printing the event that adds ${serviceId} (stderr: ${cli.stderr().slice(-300)})`,
        timeoutMs: 30_000,
      },
    );
  w1.services.set('before-rotation', '1');
  await w1.publish();
  await printedAdded('before-rotation');
  const rotated = await acheron(['token', 'rotate', 'admin', '--data-dir', control.dataDir]);
  tt.equal(rotated.code, 0, rotated.stderr.trim());
  // With the server's reason (it said only "lost"; tester T12).
  await waitFor(() => /connection to .* lost \(4001 token revoked or rotated\); reconnecting/.test(cli.stderr()), {
    what: "the server closing the rotated token's session, saying why",
  });
  // The file still holds the old token: refused, and tried again (it worked before), not the end.
  await waitFor(() => /401.*; trying /.test(cli.stderr()), { what: 'the old token refused and tried again' });
  await writeFile(`${rotating}.new`, `${rotated.stdout.trim().split('\n')[1] as string}\n`, { mode: 0o600 });
  await rename(`${rotating}.new`, rotating);
  w1.services.set('after-rotation', '1');
  await w1.publish();
  await printedAdded('after-rotation');
  tt.pass('the event after the rotation printed, through a connection made with the token from the file');
  tt.same(await cli.stop(), { code: 0, signal: null }, 'it was still watching');
});

await t.test(
  "a user's project token rotated under the watch: it goes on without it, as the project lets such a session (it gave up after 5 rounds)",
  async (tt) => {
    const { open, node } = await userWatchFleet(tt, 'pr', 'rotated', { token: 'rotated-project-token-1' });
    const tokenFile = join(dir, 'rotated.project-token');
    await writeFile(tokenFile, 'rotated-project-token-1\n', { mode: 0o600 });
    const asUser = ['--control-url', open.url, '--token', open.userToken, '--project', 'rotated', '--project-token-file', tokenFile, '--json'];
    const cli = watchCli('project token rotated', asUser);
    await waitFor(() => cli.lines().some((line) => line.includes('"pr"') && line.includes('"kind":"upsert"')), {
      what: `the watch printing pr's upsert (stderr: ${cli.stderr()})`,
    });
    await adminRequest(open, 'control.project_token_rotate', { project_id: 'rotated' });
    await waitFor(() => /watching without it/.test(cli.stderr()), { what: `the watch going on without the token (stderr: ${cli.stderr()})` });
    tt.match(
      cli.stderr(),
      /^acheron node watch: no project rotated with that project token \(--project-token-file \S+\): watching without it, as the project lets a session without its token; the file is read again at the next connection$/m,
      'says which token and what it does',
    );
    const printed = cli.lines().length;
    node.services.set('s', '2');
    await node.publish();
    await waitFor(() => cli.lines().length > printed, { what: `the next event printed after the rotation (stderr: ${cli.stderr()})` });
    tt.notMatch(cli.stderr(), /the token was refused/, 'no give-up');
    tt.same(await cli.stop(), { code: 0, signal: null }, 'still running until stopped');

    // Where observe needs the token, a session without it may not watch: the refusal is retried (also with
    // --token, not only --token-file), and the new token written into the file meanwhile resumes the watch.
    await adminRequest(open, 'control.project_upsert', { project_id: 'rotated', access_policy: { actions: { read: 'open', observe: 'token' } } });
    const current = await adminRequest<{ token: string }>(open, 'control.project_token_rotate', { project_id: 'rotated' });
    await writeFile(tokenFile, `${current.token}\n`, { mode: 0o600 });
    const strict = watchCli('project token rotated, observe needs it', asUser);
    await waitFor(() => strict.lines().length > 0, { what: `the strict watch printing the replay (stderr: ${strict.stderr()})` });
    const next = await adminRequest<{ token: string }>(open, 'control.project_token_rotate', { project_id: 'rotated' });
    await waitFor(() => /no project rotated with that project token; trying /.test(strict.stderr()), {
      what: `the refusal retried (stderr: ${strict.stderr()})`,
    });
    tt.notMatch(strict.stderr(), /watching without it/, 'not without the token: such a session may not watch');
    await writeFile(tokenFile, `${next.token}\n`, { mode: 0o600 });
    await waitFor(() => /watching again on /.test(strict.stderr()), { what: `the watch resumed with the new token (stderr: ${strict.stderr()})` });
    const before = strict.lines().length;
    node.services.set('s', '3');
    await node.publish();
    await waitFor(() => strict.lines().length > before, { what: `the next event printed (stderr: ${strict.stderr()})` });
    tt.same(await strict.stop(), { code: 0, signal: null }, 'still running until stopped');
  },
);

await t.test(
  "a project changed under a user's watch resumes it; deleted, it ends it, naming the project (exit 1); so does an unknown one at the start",
  async (tt) => {
    const { open, node } = await userWatchFleet(tt, 'pw', 'watched');
    const asUser = ['--control-url', open.url, '--token', open.userToken, '--project', 'watched', '--json'];
    // User watches are on here: a refusal says its own reason, and no hint about the server's setting.
    const noSession = await acheron(['node', 'watch', '--control-url', open.url, '--token', open.userToken]);
    tt.equal(noSession.code, 1, 'no project session: exit 1');
    tt.match(noSession.stderr, /^acheron: forbidden: a user watch needs a project session: pass --project <project_id>$/m, 'the reason names the flag');
    tt.notMatch(noSession.stderr, /ACHERON_NODE_SERVICE_WATCH_ALLOW_USER/, 'no hint about a setting the server already has');
    await adminRequest(open, 'control.project_upsert', { project_id: 'deaf', mounts: [], access_policy: { actions: { read: 'open', observe: 'deny' } } });
    const denied = await acheron(['node', 'watch', '--control-url', open.url, '--token', open.userToken, '--project', 'deaf']);
    tt.equal(denied.code, 1, 'observe denied: exit 1');
    tt.match(
      denied.stderr,
      /^acheron: forbidden: project deaf: observe is denied\nhint: the project's access_policy refuses it/m,
      'the reason, and a hint that fits it',
    );
    tt.notMatch(denied.stderr, /ACHERON_NODE_SERVICE_WATCH_ALLOW_USER/, 'no hint about the server setting');
    const cli = watchCli('deleted project', asUser);
    // The replay's last event (pw's upsert, after its join): the count below is taken once the whole replay is out.
    await waitFor(() => cli.lines().some((line) => line.includes('"pw"') && line.includes('"kind":"upsert"')), {
      what: `the watch printing the replay of pw (stderr: ${cli.stderr()})`,
    });
    // A project change ends the running watch (resync_required): it is resumed after the last seq printed, nothing twice.
    const printed = cli.lines().length;
    await adminRequest(open, 'control.project_upsert', { project_id: 'watched', mounts: [{ node_id: 'pw' }, { node_id: 'other' }] });
    await waitFor(() => /resumed after seq \d+/.test(cli.stderr()), { what: `the watch resumed after the project change (stderr: ${cli.stderr()})` });
    tt.match(
      cli.stderr(),
      /^acheron node watch: project watched changed \(its nodes or policy, or it got or lost its token\): .*; watching again after seq \d+$/m,
      'says why',
    );
    tt.equal(cli.lines().length, printed, 'nothing printed again (it started over from the replay window)');
    node.services.set('s', '2');
    await node.publish();
    await waitFor(() => cli.lines().length > printed, { what: 'the next event of pw printed' });
    const seqs = cli.lines().map((line) => (JSON.parse(line) as { seq: number }).seq);
    tt.same(seqs, [...new Set(seqs)], 'every seq once');
    await adminRequest(open, 'control.project_delete', { project_id: 'watched' });
    let exit: Awaited<RunningCli['exited']> | undefined;
    void cli.exited.then((e) => (exit = e));
    // It stayed silent, and after a reconnect looped on "no project".
    await waitFor(() => exit, { what: `the watch ending (stderr: ${cli.stderr()})`, timeoutMs: 20_000 });
    tt.same(exit, { code: 1, signal: null }, 'exit 1');
    tt.match(cli.stderr(), /^acheron: not_found: project watched was deleted: the watch has ended$/m, `says so (stderr: ${cli.stderr()})`);
    const unknown = await acheron(['node', 'watch', ...asUser]);
    tt.equal(unknown.code, 1, 'an unknown project at the start: exit 1');
    tt.match(
      unknown.stderr,
      /^acheron: not_found: no project watched this session may use without a project token \(check the id, or pass --project-token-file FILE\)$/m,
    );
    tt.notMatch(unknown.stderr, /trying/, 'at once, without retrying');
  },
);
