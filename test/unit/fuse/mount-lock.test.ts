// The per-mount pid lock (SPEC §1: one daemon per mount point) and the PidLock under it. Contenders
// are real processes (the lock is held by a pid), each running the compiled PidLock:
// `npx tsc -p tsconfig.build.json` first.
import t from 'tap';
import { spawn, type ChildProcess } from 'node:child_process';
import { readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { REPO, tempDir } from '../../helpers/node.js';
import { lockMount, lockPathOf } from '../../../src/fuse/mount-lock.js';

const COMPILED = pathToFileURL(join(REPO, 'dist', 'store', 'pid-lock.js')).href;

// Sleeps until just before the agreed moment and busy-waits the last 20 ms (three contenders spinning
// the whole 1.5 s took the CI's two cores from every other test), takes the mount's lock, says how it
// went, and holds it until its stdin closes. The file name carries "acheron": a lock counts as live
// only while an acheron process holds it. It takes the lock as lockMount does but without its wait
// for a holder whose mount is gone (STOPPING_WAIT_MS): these winners mount nothing, so every loser
// waited 15 s, two minutes a run, for what the takeover under test does not depend on.
const CONTENDER = `
const [compiled, mount, atMs] = process.argv.slice(2);
const { PidLock } = await import(compiled);
const { lockPathOf } = await import(compiled.replace('/store/pid-lock.js', '/fuse/mount-lock.js'));
await new Promise((resolve) => setTimeout(resolve, Math.max(0, Number(atMs) - 20 - Date.now())));
while (Date.now() < Number(atMs));
try {
  const lock = await PidLock.acquire(lockPathOf(mount), { name: mount, heldAs: 'served', otherwise: 'pick another directory' });
  process.stdout.write('won\\n');
  process.stdin.on('end', () => void lock.release().then(() => process.exit(0)));
  process.stdin.resume();
} catch (error) {
  process.stdout.write('lost: ' + error.message + '\\n');
}
`;

interface Contender {
  child: ChildProcess;
  /** The first line it printed: `won` or `lost: <message>`. */
  said: Promise<string>;
}

function contend(script: string, mount: string, atMs: number): Contender {
  const child = spawn(process.execPath, [script, COMPILED, mount, String(atMs)], { stdio: ['pipe', 'pipe', 'inherit'] });
  let out = '';
  const said = new Promise<string>((resolve) => {
    child.stdout?.on('data', (chunk: Buffer) => {
      out += chunk.toString();
      if (out.includes('\n')) resolve(out.split('\n')[0] as string);
    });
    child.once('exit', () => resolve(out.split('\n')[0] ?? ''));
  });
  return { child, said };
}

/** A pid that surely belonged to a process that is gone: one that just ran and exited. */
async function deadPid(): Promise<number> {
  const child = spawn('true');
  await new Promise((resolve) => child.once('exit', resolve));
  return child.pid as number;
}

t.test('a stale lock taken over by several daemons at the same moment has exactly one winner', async (t) => {
  const dir = await tempDir(t);
  const script = join(dir, 'acheron-lock-contender.mjs');
  await writeFile(script, CONTENDER);
  for (let round = 0; round < 8; round++) {
    const mount = join(dir, `mnt-${round}`);
    const path = lockPathOf(mount);
    t.teardown(() => rm(path, { force: true }));
    await writeFile(path, `${await deadPid()}\n${mount}\n`);
    // Node takes ~50 ms to start here; on a loaded machine much more.
    const atMs = Date.now() + 1500;
    const contenders = [contend(script, mount, atMs), contend(script, mount, atMs), contend(script, mount, atMs)];
    const said = await Promise.all(contenders.map((c) => c.said));
    const winners = said.filter((s) => s === 'won');
    t.equal(winners.length, 1, `round ${round}: exactly one winner (${JSON.stringify(said)})`);
    for (const loss of said.filter((s) => s !== 'won'))
      t.match(loss, /^lost: .* is served by a live acheron daemon \(pid \d+, lock /, `round ${round}: the loser names the holder`);
    const winner = contenders[said.indexOf('won')];
    const holder = (await readFile(path, 'utf8')).split('\n')[0];
    t.equal(holder, String(winner?.child.pid), `round ${round}: the lock file names the winner`);
    for (const { child } of contenders) child.stdin?.end();
    await Promise.all(contenders.map(({ child }) => (child.exitCode === null ? new Promise((resolve) => child.once('exit', resolve)) : undefined)));
    await t.rejects(readFile(path), { code: 'ENOENT' }, `round ${round}: the winner's release removed the lock`);
  }
});

t.test('a live holder is named; its own process takes the lock over only when it is stale', async (t) => {
  const dir = await tempDir(t);
  const mount = join(dir, 'mnt');
  const path = lockPathOf(mount);
  t.teardown(() => rm(path, { force: true }));
  const lock = await lockMount(mount);
  t.equal((await readFile(path, 'utf8')).split('\n')[0], String(process.pid), 'the lock names this process');
  await lock.release();
  await t.rejects(readFile(path), { code: 'ENOENT' }, 'release removes it');
  // A lock left by a process that is gone, or by a pid that is now something else than acheron.
  await writeFile(path, `${await deadPid()}\n${mount}\n`);
  const taken = await lockMount(mount);
  t.equal((await readFile(path, 'utf8')).split('\n')[0], String(process.pid), "a dead holder's lock is taken over");
  await taken.release();
  await writeFile(path, `1\n${mount}\n`);
  const overPid1 = await lockMount(mount);
  t.equal((await readFile(path, 'utf8')).split('\n')[0], String(process.pid), 'pid 1 (not acheron) does not hold it');
  await overPid1.release();
});
