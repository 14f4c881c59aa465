// SPEC §1 and the CLI's output in pipes (src/cli/command-output.ts): a command exits once what it
// printed has reached the reader, so a large `--json` arrives whole at a slow reader (it was cut at
// the pipe's 64 KiB: the exit came first); a reader that leaves early (`| head`) ends the command
// quietly with exit 0, where `acheron node watch --json | head -n 1` died of "Unhandled 'error'
// event ... write EPIPE" with a stack on stderr and exit 1 at the next event.
import t, { type Test } from 'tap';
import { spawn } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { FileTokenStore } from '../../src/control/file-token-store.js';
import { SimNode } from '../helpers/catalog-sim.js';
import { startControl } from '../helpers/control.js';
import { ACHERON, tempDir } from '../helpers/node.js';
import { q, watchdog } from '../helpers/process.js';

interface Piped {
  /** What the reader printed. */
  out: string;
  /** The exit status of acheron itself (bash's PIPESTATUS), not the reader's. */
  status: number;
  /** acheron's stderr. */
  stderr: string;
}

/**
 * bash running `acheron <args> | <reader>` in its own process group (teardown kills the group, so a
 * command that never ends is not left behind); `whileRunning` runs until the pipeline has ended.
 */
async function piped(tt: Test, args: readonly string[], reader: string, whileRunning?: (ended: () => boolean) => Promise<void>): Promise<Piped> {
  const command = `node ${q(ACHERON)} ${args.map(q).join(' ')} | ${reader}; echo "acheron exit \${PIPESTATUS[0]}"`;
  const child = spawn('bash', ['-c', command], { detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
  watchdog(child.pid as number);
  let out = '';
  let stderr = '';
  child.stdout.on('data', (chunk: Buffer) => (out += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  let ended = false;
  const closed = new Promise<void>((resolve) => child.once('close', () => resolve()));
  void closed.then(() => (ended = true));
  tt.teardown(() => {
    if (!ended) process.kill(-(child.pid as number), 'SIGKILL');
  });
  const bound = setTimeout(() => process.kill(-(child.pid as number), 'SIGKILL'), 60_000);
  await Promise.all([closed, whileRunning?.(() => ended)]);
  clearTimeout(bound);
  const status = /acheron exit (\d+)\n$/.exec(out);
  return { out: out.slice(0, status?.index), status: Number(status?.[1] ?? -1), stderr };
}

await t.test('a large --json arrives whole at a slow reader; a reader that takes only its head ends the command quietly', async (tt) => {
  const dataDir = await tempDir(tt);
  const store = await FileTokenStore.open(dataDir);
  // 3000 join tokens: `token list --json` prints about 470 KB, seven times a pipe's buffer.
  await Promise.all(Array.from({ length: 3000 }, () => store.createJoin(60_000)));
  await store.close();
  const list = ['token', 'list', '--json', '--data-dir', dataDir];
  const slow = await piped(tt, list, '{ sleep 2; cat; }');
  tt.equal(slow.status, 0, `exit 0 (${slow.stderr.trim()})`);
  tt.equal(slow.stderr, '');
  tt.equal(
    (JSON.parse(slow.out) as { tokens: unknown[] }).tokens.length,
    3002,
    `all of it, ${slow.out.length} bytes: the admin, the user and the 3000 join tokens`,
  );
  const head = await piped(tt, list, 'head -c 100');
  tt.equal(head.out.length, 100, 'the reader took its 100 bytes');
  tt.equal(head.status, 0, 'the reader leaving is no failure of the command: exit 0');
  tt.equal(head.stderr, '', 'and nothing on stderr');
});

await t.test('node watch --json | head -n 1: the watch ends at the next event, exit 0, no stack', async (tt) => {
  const control = await startControl(tt);
  const dir = await tempDir(tt);
  const tokenFile = join(dir, 'admin.token');
  await writeFile(tokenFile, control.adminToken + '\n', { mode: 0o600 });
  const node = await SimNode.join(control.url, control.dataDir, 'w1');
  tt.teardown(() => node.peer.socket.terminate());
  let version = 0;
  // Events keep coming until the command has ended: the first one after `head` left is written into a closed pipe.
  const publishing = async (ended: () => boolean): Promise<void> => {
    while (!ended()) {
      node.services.set('s', String(++version));
      await node.publish();
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  };
  const watch = await piped(tt, ['node', 'watch', '--json', '--since', '0', '--control-url', control.url, '--token-file', tokenFile], 'head -n 1', publishing);
  tt.match(JSON.parse(watch.out), { seq: 1, node_id: 'w1', kind: 'online' }, 'head printed the first event');
  tt.equal(watch.status, 0, 'the watch ended with exit 0');
  tt.equal(watch.stderr, '', 'nothing on stderr (before: "Unhandled \'error\' event" and a stack)');
});
