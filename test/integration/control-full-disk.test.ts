// A control server whose data dir fills up (a real tmpfs): a store write the disk has no room for was
// answered `unavailable: internal error; see the server log`, and a join's token lock was left behind,
// failing every join for 30 s. Now the reply names the file and the errno, and once there is room again
// the next join goes through at once. /readyz said `store: ok` (and acheron_store_ready 1) while every
// append failed: an append cut cleanly back off the file did not count. Now the store check fails,
// naming the file and the errno, until a write would succeed again.
import t from 'tap';
import { readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { sh, q, waitFor } from '../helpers/process.js';
import { tmpfsDir } from '../helpers/tmpfs.js';
import { SimNode } from '../helpers/catalog-sim.js';
import { joinToken, metricValue, scrape, session, startControl, type RunningControl } from '../helpers/control.js';

// The data dir is the mount itself: the server's log (`<data dir>.log`) stays writable beside it.
const dataDir = await tmpfsDir(t, '512k', '0700');

const filler = join(dataDir, 'filler');

/** The /readyz status and its `store` line, and acheron_store_ready. */
async function storeReadiness(control: RunningControl): Promise<{ status: number; store: string | undefined; metric: number | undefined }> {
  const ready = await fetch(`${control.httpUrl}/readyz`);
  const store = /^store: (.*)$/m.exec(await ready.text())?.[1];
  return { status: ready.status, store, metric: metricValue(await scrape(control), 'acheron_store_ready') };
}

t.test('a full disk: replies name the file and the errno, /readyz fails; joins work again at once after', async (t) => {
  const control = await startControl(t, { dataDir });
  const [first, second] = [await joinToken(dataDir), await joinToken(dataDir)];
  const admin = await session(control.url, { token: control.adminToken });
  t.teardown(() => admin.close());
  const n0 = await SimNode.provision(control.url, control.adminToken, 'n0');
  t.teardown(() => n0.peer.close());
  t.match(await storeReadiness(control), { status: 200, store: 'ok', metric: 1 }, 'ready');
  await sh(`head -c 1M /dev/zero > ${q(filler)}`);

  const upsert = await admin.request('control.project_upsert', { project_id: 'p', name: 'P', mounts: [] });
  t.match(
    upsert.error,
    { code: 'unavailable', message: /^the control server could not read or write its files: state journal .*projects\.journal: ENOSPC/ },
    'a journal write',
  );
  t.match(
    await storeReadiness(control),
    { status: 503, store: /^the state journal \S*projects\.journal could not make a change durable: ENOSPC/, metric: 0 },
    'not ready: the journal write failed',
  );

  const joiner = await session(control.url, { token: first });
  t.teardown(() => joiner.close());
  const refused = await joiner.request('control.node_join', { join_token: first, node_id: 'n1' });
  t.match(refused.error, { code: 'unavailable', message: /auth_tokens\.json\.lock: the lock could not be written: ENOSPC/ }, 'the token lock');

  // Bigger than what the log's last page may have left: the append needs a page the disk does not have.
  n0.services.set('s', '1');
  const upserted = await n0.upsert({ bulk: 'x'.repeat(8192) });
  t.match(upserted.error, { code: 'unavailable', message: /the event log could not make the change durable \(ENOSPC/ }, 'an event log append');
  t.match(
    await storeReadiness(control),
    { status: 503, store: /^the event log \S*node-service-events\.ndjson could not make a change durable: ENOSPC/, metric: 0 },
    'not ready while the append fails, though it was cut back off the file',
  );

  await rm(filler);
  // Nothing is written meanwhile: the check probes the files that failed (at most once a second).
  await waitFor(async () => (await storeReadiness(control)).status === 200, { what: 'ready again once there is room' });
  t.match(await storeReadiness(control), { status: 200, store: 'ok', metric: 1 }, 'ready again, before any change');
  const started = Date.now();
  const again = await session(control.url, { token: second });
  t.teardown(() => again.close());
  const joined = await again.request('control.node_join', { join_token: second, node_id: 'n2' });
  t.equal(joined.ok, true, `joined: ${JSON.stringify(joined.error)}`);
  t.ok(Date.now() - started < 5_000, 'at once: no lock was left behind');
});

// The tester's case: a node gone while the disk is full stayed online (its offline event refused,
// rightly), and `housekeeping failed` plus the event log's own line were logged with a stack every
// second. Now each is logged once, and the node turns offline once there is room.
t.test('a node gone while the disk is full: online until there is room, the failure logged once', async (t) => {
  const dir = await tmpfsDir(t, '512k', '0700');
  const control = await startControl(t, { dataDir: dir, args: ['--offline-grace-ms', '500'] });
  const admin = await session(control.url, { token: control.adminToken });
  t.teardown(() => admin.close());
  const gone = await SimNode.provision(control.url, control.adminToken, 'gone');
  t.teardown(() => gone.peer.close());
  // Its offline event carries its services: bigger than what the log's last page may have left.
  gone.services.set('s', '1');
  await gone.publish({ bulk: 'x'.repeat(8192) });
  await sh(`head -c 1M /dev/zero > ${q(join(dir, 'filler'))}`);
  await gone.peer.close();

  const node = (): Promise<{ state: string; lease_expires_at_ms: number }> => admin.call('control.node_get', { node_id: 'gone' });
  const lapsedMs = await waitFor(
    async () => {
      const { state, lease_expires_at_ms: expiresMs } = await node();
      return state === 'online' && Date.now() > expiresMs + 3_000 && expiresMs;
    },
    { what: 'three housekeeping rounds past its grace' },
  );
  t.equal((await node()).state, 'online', `still online ${Date.now() - lapsedMs} ms after its grace: its offline event is refused`);
  t.match(await storeReadiness(control), { status: 503, store: /^the event log .*ENOSPC/, metric: 0 }, 'not ready');
  const logged = async (message: string): Promise<number> =>
    (await readFile(control.logFile, 'utf8')).split('\n').filter((line) => line.includes(message)).length;
  t.equal(await logged('"msg":"housekeeping failed"'), 1, 'housekeeping failed: logged once');
  t.equal(await logged('"msg":"event log: an append failed'), 1, 'the append failure: logged once');
  t.ok((await logged('"msg":"state journal: write failed"')) <= 1, 'the last-seen journal (its heartbeat every 5 s): at most once');

  await rm(join(dir, 'filler'));
  await waitFor(async () => (await node()).state === 'offline', { what: 'offline once there is room' });
  await waitFor(async () => (await logged('housekeeping works again')) === 1, { what: 'the recovery logged' });
  t.match(await storeReadiness(control), { status: 200, store: 'ok', metric: 1 }, 'ready');
});
