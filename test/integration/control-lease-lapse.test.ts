// SPEC §6 and §9: a node whose lease lapses while its tunnel still looks open (a silent link, or a
// hung node, that the server's pings have not caught yet: a lease shorter than two ping intervals)
// turns offline, and that tunnel ends with it. A relay then answered EHOSTUNREACH only once the
// pings dropped the tunnel (a hang of the ping interval's length, minutes at worst), and a lease
// refresh the link delivered late brought the node back online with no tunnel. Here the node hangs
// (SIGSTOP): its TCP connection stays open, and nothing it sends arrives. And the shortest lease is
// refreshed in time.
import t from 'tap';
import { readFile } from 'node:fs/promises';
import { acheron, metricValue, scrape, startControl, startJoinedNode } from '../helpers/control.js';
import { tempDir } from '../helpers/node.js';
import { waitFor } from '../helpers/process.js';

t.test('lease lapsed on an open tunnel: offline, the tunnel dropped, relays refused at once; the node comes back by itself', async (tt) => {
  const control = await startControl(tt, { args: ['--lease-ttl-ms', '3000', '--ping-interval-ms', '120000'] });
  const dir = await tempDir(tt);
  const node = await startJoinedNode(tt, control, 'n1', dir);
  const pid = node.child.pid as number;
  // Before the node's own teardown (teardowns run last first), so that its stop is the usual one; a node gone already is no error.
  tt.teardown(() => {
    try {
      process.kill(pid, 'SIGCONT');
    } catch {
      // ESRCH
    }
  });
  const client = ['--control-url', control.url, '--token', control.adminToken];
  const state = async (): Promise<string> => (await acheron(['node', 'get', 'n1', ...client, '--json'])).stdout;

  process.kill(pid, 'SIGSTOP');
  await waitFor(async () => /"state":\s*"offline"/.test(await state()), { what: 'n1 offline by its lease', timeoutMs: 30_000 });
  await waitFor(async () => metricValue(await scrape(control), 'acheron_connections_dropped_total', 'reason="lease_lapsed"') === 1, {
    what: 'its tunnel dropped as lapsed',
  });
  // At once, told offline (before, it waited on the silent tunnel for the relay's bound, echo's timeout and more).
  const refused = await acheron(['invoke', 'echo', '{}', '--node', 'n1', ...client]);
  tt.equal(refused.code, 1, refused.stderr);
  tt.match(refused.stderr, /^acheron invoke: echo: EHOSTUNREACH: node n1 is offline \(its lease lapsed/, 'EHOSTUNREACH, saying the node is offline');

  process.kill(pid, 'SIGCONT');
  await waitFor(async () => /"state":\s*"online"/.test(await state()), { what: 'n1 online again', timeoutMs: 60_000 });
  const again = await acheron(['invoke', 'echo', '{"back":1}', '--node', 'n1', ...client]);
  tt.equal(again.code, 0, again.stderr);
  tt.match(JSON.parse(again.stdout), { echo: { back: 1 } }, 'it connected again and serves relays');
});

t.test('the shortest lease the server takes (1000 ms): an idle node refreshes in time and stays online', async (tt) => {
  // It refreshed every 1000 ms at least, as long as the lease, and flapped offline and online about every 11 s (tester T12).
  const control = await startControl(tt, { args: ['--lease-ttl-ms', '1000'] });
  await startJoinedNode(tt, control, 'idle', await tempDir(tt));
  await new Promise((resolve) => setTimeout(resolve, 8_000));
  const log = await readFile(control.logFile, 'utf8');
  tt.notMatch(log, /"msg":"node idle offline"/, 'never offline');
  tt.match(log, /"msg":"node idle online"/, 'online (the log line of its join)');
});
