// SPEC §1 daemon lifecycle: SIGTERM stops cleanly (a second signal forces it), SIGKILL leaves a stale
// mount that the next start clears, a live mount is never mounted over, an external umount stops the
// daemon, a dead driver spawner shows in NODE.json and the probes, start-up errors name what was wrong.
import t, { type Test } from 'tap';
import { readFile, writeFile, mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { ACHERON, FIXTURES, manifest, readJson, startNode, tempDir, type RunningNode } from '../helpers/node.js';
import { q, sh, waitFor, alive } from '../helpers/process.js';
import { ECHO_WASM } from '../helpers/wat.js';

async function isMounted(mount: string): Promise<boolean> {
  const table = await readFile('/proc/self/mountinfo', 'utf8');
  return table.split('\n').some((line) => line.split(' ')[4] === mount);
}

async function childPids(pid: number): Promise<number[]> {
  const { stdout } = await sh(`ps --ppid ${pid} -o pid= || true`);
  return stdout
    .split('\n')
    .map((s) => Number(s.trim()))
    .filter((n) => n > 0);
}

/** The driver spawner is the daemon's only child process (forked before the mount). */
async function spawnerOf(tt: Test, node: RunningNode): Promise<number> {
  const pid = node.child.pid as number;
  const children = await waitFor(
    async () => {
      const pids = await childPids(pid);
      return pids.length > 0 && pids;
    },
    { what: 'the driver spawner' },
  );
  const { stdout } = await sh(`ps -o args= -p ${children[0]}`);
  tt.match(stdout, /spawner-main/, "the daemon's child is the driver spawner");
  return children[0] as number;
}

/** The driver processes the spawner runs, once there are any. */
function driversUnder(spawner: number): Promise<number[]> {
  return waitFor(
    async () => {
      const pids = await childPids(spawner);
      return pids.length > 0 && pids;
    },
    { what: 'the driver under the spawner' },
  );
}

/** Waits until the (re)started daemon serves the tree itself: a stale entry may still be in mountinfo. */
async function serving(node: RunningNode): Promise<void> {
  await waitFor(async () => (await readJson(join(node.mount, 'NODE.json'))).pid === node.child.pid, {
    what: `daemon ${node.child.pid} serving ${node.mount}`,
    timeoutMs: 30_000,
  });
}

async function invokeEcho(node: RunningNode, payload = '{"msg":"hi"}'): Promise<Record<string, unknown>> {
  const run = await sh(`/bin/echo ${q(payload)} > ${q(join(node.service('echo'), 'control', 'invoke.json'))}`);
  if (run.code !== 0) throw new Error(`invoke failed: ${run.stderr.trim()}`);
  return readJson(join(node.service('echo'), 'result.json'));
}

await t.test('SIGTERM: exit 0, mount gone, spawner gone; a restart on the same dir works', async (tt) => {
  const node = await startNode(tt, { manifests: [manifest('echo', 'echo')] });
  tt.same((await invokeEcho(node)).echo, { msg: 'hi' }, 'invoke works');
  const spawner = await spawnerOf(tt, node);
  process.kill(node.child.pid as number, 'SIGTERM');
  tt.same(await node.exited, { code: 0, signal: null }, 'the daemon exits 0');
  tt.notOk(await isMounted(node.mount), 'the mount is gone from mountinfo');
  await waitFor(async () => !(await alive(spawner)), { what: 'the spawner to exit' });
  tt.pass('the spawner is gone');

  const again = await node.restart();
  await serving(again);
  tt.same((await invokeEcho(again, '{"again":1}')).echo, { again: 1 }, 'the restarted daemon serves');
});

await t.test('a SIGHUP while the CLI still loads (logrotate or a reload right after a start) does not end the daemon', async (tt) => {
  // It did, exit 129, for the second or more its modules take to load on a busy machine.
  const node = await startNode(tt, {
    manifests: [manifest('echo', 'echo')],
    env: { NODE_OPTIONS: `--import=${join(FIXTURES, 'preload', 'hangup-while-loading.mjs')}` },
  });
  tt.same((await invokeEcho(node)).echo, { msg: 'hi' }, 'it came up and serves');
  process.kill(node.child.pid as number, 'SIGTERM');
  tt.same(await node.exited, { code: 0, signal: null }, 'its stop is the clean one, exit 0');
});

await t.test('SIGKILL: stale mount, spawner exits by itself, restart clears it', async (tt) => {
  const node = await startNode(tt, { manifests: [manifest('echo', 'echo')] });
  await invokeEcho(node);
  const spawner = await spawnerOf(tt, node);
  process.kill(node.child.pid as number, 'SIGKILL');
  tt.equal((await node.exited).signal, 'SIGKILL');
  const ls = await sh(`ls ${q(node.mount)}`);
  tt.not(ls.code, 0, 'ls on the dead mount fails');
  tt.match(ls.stderr, /Transport endpoint is not connected/, 'the mount is stale');
  tt.ok(await isMounted(node.mount), 'and still in mountinfo');
  await waitFor(async () => !(await alive(spawner)), { what: 'the orphaned spawner to exit', timeoutMs: 20_000 });
  tt.pass('the spawner noticed the lost link and exited');

  const again = await node.restart();
  await serving(again);
  tt.same((await invokeEcho(again, '{"after":"kill"}')).echo, { after: 'kill' }, 'the restarted daemon serves');
  const log = await readFile(node.logFile, 'utf8');
  tt.match(log, /cleared a stale mount/, 'the restart logged the clean-up');
});

await t.test('a second daemon on a live mount fails and the first keeps working', async (tt) => {
  const node = await startNode(tt, { manifests: [manifest('echo', 'echo')] });
  const other = await tempDir(tt);
  const run = await sh(
    `exec node ${q(ACHERON)} node --node-id intruder --mount ${q(node.mount)} --no-fs-service --services-dir ${q(other)} --log-file ${q(join(other, 'log'))} --state-file ${q(join(other, 'state.json'))}`,
    { timeoutMs: 30_000 },
  );
  tt.equal(run.code, 1, 'exit code 1');
  tt.match(run.stderr, new RegExp(`${node.mount.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}.*live`), `names the live mount: ${run.stderr.trim()}`);
  tt.equal(run.stderr.trim().split('\n').length, 1, 'one line');
  tt.equal((await readJson(join(node.mount, 'NODE.json'))).node_id, 'test-node', 'the first daemon still serves its tree');
  tt.same((await invokeEcho(node, '{"still":true}')).echo, { still: true }, 'and invokes');
});

await t.test('SIGTERM during a slow invocation: it completes, then exit 0', async (tt) => {
  // Long enough to still run when the test has found it under the spawner on a busy machine.
  const node = await startNode(tt, { manifests: [manifest('slow', 'slow')], args: ['--shutdown-grace-ms', '15000'], env: { SLOW_SECONDS: '4' } });
  const dir = node.service('slow');
  // Python's explicit close() raises when the flush fails, so "closed" proves the invocation ended well.
  const writer = sh(
    `python3 -c 'import sys; f = open(sys.argv[1], "w"); f.write("{\\"n\\": 1}"); f.close(); print("closed")' ${q(join(dir, 'control', 'invoke.json'))}`,
  );
  await waitFor(async () => (await readJson(join(dir, 'status.json'))).state === 'running', { what: 'the slow invocation to run' });
  const spawner = await spawnerOf(tt, node);
  const drivers = await driversUnder(spawner);
  process.kill(node.child.pid as number, 'SIGTERM');
  const closed = await writer;
  tt.equal(closed.code, 0, `the writer's close returned 0 (${closed.stderr.trim()})`);
  tt.equal(closed.stdout.trim(), 'closed');
  tt.same(await node.exited, { code: 0, signal: null }, 'the daemon exits 0');
  tt.notOk(await isMounted(node.mount), 'the mount is gone');
  for (const pid of [spawner, ...drivers]) tt.notOk(await alive(pid), `process ${pid} is gone`);
  tt.match(await readFile(node.logFile, 'utf8'), /SIGTERM/, 'the log names the signal');
});

await t.test('a second signal during the grace forces the stop: drivers cancelled, state saved, unmounted, exit 1', async (tt) => {
  // A grace and a driver timeout far longer than the test waits: only the second signal can end the stop.
  const node = await startNode(tt, {
    manifests: [manifest('hang', 'hang', { runtime: { timeout_ms: 600_000, kill_grace_ms: 200 } })],
    args: ['--shutdown-grace-ms', '600000'],
  });
  const dir = node.service('hang');
  const writer = sh(`/bin/echo '{"n":1}' > ${q(join(dir, 'control', 'invoke.json'))}`);
  await waitFor(async () => (await readJson(join(dir, 'status.json'))).state === 'running', { what: 'the hanging invocation to run' });
  const spawner = await spawnerOf(tt, node);
  const drivers = await driversUnder(spawner);
  process.kill(node.child.pid as number, 'SIGTERM');
  await waitFor(async () => (await readFile(node.logFile, 'utf8')).includes('"msg":"stopping"'), { what: 'the stop to begin' });
  process.kill(node.child.pid as number, 'SIGINT');
  let exited: Awaited<RunningNode['exited']> | undefined;
  void node.exited.then((outcome) => (exited = outcome));
  await waitFor(() => exited, { what: 'the forced stop to end the daemon', timeoutMs: 30_000 });
  tt.same(exited, { code: 1, signal: null }, 'the daemon exits 1: work was cut short');
  tt.notOk(await isMounted(node.mount), 'the mount is gone');
  for (const pid of [spawner, ...drivers]) tt.notOk(await alive(pid), `process ${pid} is gone`);
  await writer;
  const log = await readFile(node.logFile, 'utf8');
  tt.match(log, /"reason":"SIGINT","msg":"forced stop: the shutdown grace is cut short"/, 'the log says the stop was forced, and by what');
  tt.match(log, /"forced":true,"msg":"stopped"/, 'and that it stopped');

  const again = await node.restart();
  await serving(again);
  const [job] = (await sh(`ls ${q(join(again.service('hang'), 'jobs'))}`)).stdout.split('\n').filter(Boolean);
  tt.ok(job, 'the invocation is in jobs/ after the restart');
  tt.match(await readJson(join(again.service('hang'), 'jobs', job as string, 'status.json')), { state: 'cancelled' }, 'journaled as cancelled before the exit');
});

await t.test('SIGTERM with a stopped driver spawner: the stop gives up on the run after its kill, kills the spawner, unmounts, exits 0', async (tt) => {
  const node = await startNode(tt, {
    manifests: [manifest('echo', 'echo', { runtime: { timeout_ms: 1000, kill_grace_ms: 200 } })],
    args: ['--shutdown-grace-ms', '500'],
  });
  const spawner = await spawnerOf(tt, node);
  // If the test fails, a stopped process would outlive it.
  tt.teardown(() => void sh(`kill -KILL ${spawner} 2>/dev/null || true`));
  process.kill(spawner, 'SIGSTOP');
  const dir = node.service('echo');
  const writer = await sh(`/bin/echo '{"n":1}' > ${q(join(dir, 'control', 'invoke.json'))}`);
  tt.match(writer.stderr, /timed out/i, 'the writer gets ETIMEDOUT after its bound, the run goes on');
  process.kill(node.child.pid as number, 'SIGTERM');
  let exited: Awaited<RunningNode['exited']> | undefined;
  void node.exited.then((outcome) => (exited = outcome));
  // The grace (0.5 s), the kill's bound (0.2 + 2 s), the spawner's (0.2 + 10 s), and the unmount.
  await waitFor(() => exited, { what: 'the daemon to exit', timeoutMs: 30_000 });
  tt.same(exited, { code: 0, signal: null }, 'exit 0: the grace was not cut short');
  tt.notOk(await isMounted(node.mount), 'the mount is gone');
  tt.notOk(await alive(spawner), 'the stopped spawner was killed');
  const log = await readFile(node.logFile, 'utf8');
  tt.match(log, /"service":"echo","invocations":\["[^"]+"\],"msg":"invocations the kill did not end were abandoned/, 'the log names what was abandoned');
  tt.match(log, /the driver spawner did not exit when told to: killed \(SIGKILL\)/, 'and the kill of the spawner');
  tt.match(log, /"msg":"stopped"/, 'and that it stopped');
});

await t.test('an external umount stops the daemon with exit 0', async (tt) => {
  const node = await startNode(tt, { manifests: [manifest('echo', 'echo')] });
  await invokeEcho(node);
  const spawner = await spawnerOf(tt, node);
  const run = await sh(`umount ${q(node.mount)}`);
  tt.equal(run.code, 0, run.stderr);
  let exited: Awaited<RunningNode['exited']> | undefined;
  void node.exited.then((outcome) => (exited = outcome));
  await waitFor(() => exited, { what: 'the daemon to notice the umount and exit' });
  tt.same(exited, { code: 0, signal: null }, 'the daemon noticed and exited 0');
  tt.notOk(await isMounted(node.mount), 'nothing left mounted');
  await waitFor(async () => !(await alive(spawner)), { what: 'the spawner to exit' });
  tt.match(await readFile(node.logFile, 'utf8'), /unmounted from outside/);
});

await t.test('an external umount, then the same start at once: the new daemon waits for the old one to stop, then serves', async (tt) => {
  const node = await startNode(tt, { manifests: [manifest('echo', 'echo')] });
  await invokeEcho(node);
  const run = await sh(`umount ${q(node.mount)}`);
  tt.equal(run.code, 0, run.stderr);
  // At once: the old daemon notices the umount within a second and holds the mount's lock until it has stopped.
  const again = await node.restart();
  tt.same(await node.exited, { code: 0, signal: null }, 'the old daemon stopped first, exit 0');
  tt.same((await invokeEcho(again, '{"msg":"again"}')).echo, { msg: 'again' }, 'the new one serves');
});

await t.test('a lost driver spawner shows at once: NODE.json says so, the services that need it are degraded', async (tt) => {
  // Reloads (which probe too) only on SIGHUP: what shows below, the spawner's exit showed by itself.
  const node = await startNode(tt, {
    manifests: [manifest('echo', 'echo'), { service_id: 'echo-wasm', kind: 'echo', runtime: { type: 'wasm', module_path: ECHO_WASM } }],
    args: ['--manifest-reload-interval-ms', '0', '--terminal-id', 't1'],
  });
  type NodeJson = { driver_spawner: { state: string; exited_ms: number | null; error: string | null } };
  const nodeJson = join(node.mount, 'NODE.json');
  tt.same((await readJson<NodeJson>(nodeJson)).driver_spawner, { state: 'running', exited_ms: null, error: null }, 'running');
  process.kill(await spawnerOf(tt, node), 'SIGKILL');
  const shown = await waitFor(
    async () => {
      const { driver_spawner } = await readJson<NodeJson>(nodeJson);
      return driver_spawner.state === 'exited' && driver_spawner;
    },
    { what: 'NODE.json to show the lost spawner' },
  );
  tt.match(shown, { error: 'driver spawner exited (SIGKILL)', exited_ms: Number }, 'NODE.json: how and when it exited');
  const why = 'driver spawner exited (SIGKILL): no driver can start until the node restarts';
  for (const id of ['echo', 'terminal-t1']) {
    const health = await waitFor(
      async () => {
        const read = await readJson<{ probe: { ok: boolean } }>(join(node.service(id), 'health.json'));
        return !read.probe.ok && read;
      },
      { what: `the probe of ${id} to fail` },
    );
    tt.match(health, { state: 'degraded', probe: { ok: false, error: why } }, `${id}: degraded, its probe names the spawner`);
  }
  tt.match(await readJson(join(node.service('echo-wasm'), 'health.json')), { state: 'online', probe: { ok: true } }, 'a wasm service does not need it');
  tt.match(await readJson(nodeJson), { services_by_state: { degraded: 2 } }, 'NODE.json counts the degraded services');
  const logged = (await readFile(node.logFile, 'utf8')).split('\n').filter((line) => line.includes('"msg":"probe: driver cannot be run"'));
  tt.equal(logged.length, 2, 'logged once per service');
  tt.match(logged.join('\n'), `"service_id":"echo","error":"${why}"`);
});

await t.test('start-up errors name what was wrong and mount nothing', async (tt) => {
  const dir = await tempDir(tt);
  const mount = join(dir, 'mnt');
  const start = (servicesDir: string) =>
    sh(
      `exec node ${q(ACHERON)} node --node-id bad --mount ${q(mount)} --no-fs-service --services-dir ${q(servicesDir)} --state-file ${q(join(dir, 'state.json'))}`,
      { timeoutMs: 30_000 },
    );

  await tt.test('invalid manifest: file, JSON path and rule', async (ttt) => {
    const services = join(dir, 'typo.d');
    await mkdir(services);
    const file = join(services, 'typo.json');
    await writeFile(file, JSON.stringify(manifest('typo', 'echo', { runtime: { timout_ms: 100 } })));
    const run = await start(services);
    ttt.equal(run.code, 1, 'exit 1');
    ttt.match(run.stderr, file, 'names the file');
    ttt.match(run.stderr, '/runtime/timout_ms', 'names the JSON path');
    ttt.match(run.stderr, /unknown key/, 'names the rule');
    ttt.notOk(await isMounted(mount), 'nothing mounted');
  });

  await tt.test('runtime.cwd inside the mount: file, JSON path and rule', async (ttt) => {
    const services = join(dir, 'cwd.d');
    await mkdir(services);
    const file = join(services, 'inside.json');
    await writeFile(file, JSON.stringify(manifest('inside', 'echo', { runtime: { cwd: join(mount, 'services') } })));
    const run = await start(services);
    ttt.equal(run.code, 1, 'exit 1');
    ttt.match(
      run.stderr,
      `acheron: ${file}: /runtime/cwd: ${join(mount, 'services')} lies inside the mount ${mount}`,
      'names the file, the JSON path, the value and the rule',
    );
    ttt.notOk(await isMounted(mount), 'nothing mounted');
  });

  await tt.test('duplicate service_id across two files names both', async (ttt) => {
    const services = join(dir, 'dup.d');
    await mkdir(services);
    await writeFile(join(services, 'a.json'), JSON.stringify(manifest('same', 'echo')));
    await writeFile(join(services, 'b.json'), JSON.stringify(manifest('same', 'cat')));
    const run = await start(services);
    ttt.equal(run.code, 1, 'exit 1');
    ttt.match(run.stderr, join(services, 'a.json'), 'names the first file');
    ttt.match(run.stderr, join(services, 'b.json'), 'names the second file');
    ttt.match(run.stderr, /"same"/, 'names the service id');
    ttt.notOk(await isMounted(mount), 'nothing mounted');
  });
});
