// SPEC §10 the debug page, in a real headless browser: Debian's chromium driven by playwright-core
// (never a downloaded browser) against live `acheron control` child processes. Events come from an
// admin ControlClient (nodes provisioned by the admin, catalogs upserted); a raw admin watcher is
// the reference for what the page must list. Covers the token kept per browser session, the watch
// (replay, live, node filter, unwatch), the per-service changes, the diff and its JSON export, the
// fs links (into the console's own fs browser), the project-scope preview, and the refusals with
// their hints. The console's other views on real nodes: console-fleet.test.ts, console-views.test.ts.
import t, { type Test } from 'tap';
import { readFile } from 'node:fs/promises';
import { chromium, type Browser, type Page } from 'playwright-core';
import { ControlClient } from '../../src/protocol/control-client.js';
import { service } from '../helpers/catalog-sim.js';
import { session, startControl, type RawPeer, type RunningControl } from '../helpers/control.js';
import { waitFor, withEnv } from '../helpers/process.js';
import type { DeltaEntry as ProtocolDeltaEntry, UpdatedEntry } from '../../src/protocol/types.gen.js';

const EVENT = 'control.node_service_event';
const PROJECT_TOKEN = 'p1-project-token-0123456789';

/** A service_delta entry; updated ones also carry the previous version and hash. */
type DeltaEntry = Partial<UpdatedEntry> & ProtocolDeltaEntry;

interface EventPayload {
  seq: number;
  kind: string;
  node_id: string;
  replay?: boolean;
  service_delta: { added: DeltaEntry[]; updated: DeltaEntry[]; removed: DeltaEntry[] };
}

interface Row {
  seq: number;
  node: string;
  kind: string;
  replay: string;
  delta: string;
  fs: string;
}

interface DiffService {
  service_id: string;
  change: string;
  version_a?: string;
  version_b?: string;
  fields?: Array<{ path: string; a?: unknown; b?: unknown }>;
}

interface Export {
  exported_at: string;
  a: EventPayload & Record<string, unknown>;
  b: EventPayload & Record<string, unknown>;
  views: Record<'a' | 'b', { complete: boolean; services: Array<{ service_id: string; version: string }> }>;
  diff: { a_seq: number; b_seq: number; complete: boolean; services: DiffService[] };
}

async function adminOf(tt: Test, control: RunningControl): Promise<ControlClient> {
  const admin = await ControlClient.connect({ url: control.url, token: control.adminToken });
  tt.teardown(() => admin.terminate());
  return admin;
}

/** Provisions nodes as the admin (an admin join consumes no join token: the field is not checked). */
async function provision(admin: ControlClient, ...nodeIds: string[]): Promise<void> {
  for (const nodeId of nodeIds) await admin.request('control.node_join', { join_token: 'admin-provisioned', node_id: nodeId });
}

function upsert(admin: ControlClient, nodeId: string, versions: Record<string, string>): Promise<unknown> {
  return admin.request('control.node_service_upsert', {
    node_id: nodeId,
    services: Object.entries(versions).map(([id, version]) => service(nodeId, id, version)),
  });
}

/** An unfiltered admin watch: every event, for the expected rows. */
async function reference(tt: Test, control: RunningControl): Promise<{ peer: RawPeer; events: EventPayload[] }> {
  const peer = await session(control.url, { token: control.adminToken });
  tt.teardown(() => void peer.socket.terminate());
  await peer.call('control.node_service_watch', { replay_limit: 1000 });
  await peer.next((f) => f.type === 'control.node_service_watch_synced');
  const events = (): EventPayload[] => peer.frames.filter((f) => f.type === EVENT).map((f) => f.payload as EventPayload);
  return {
    peer,
    get events() {
      return events();
    },
  };
}

const summary = (e: EventPayload): string => `+${e.service_delta.added.length} ~${e.service_delta.updated.length} -${e.service_delta.removed.length}`;

async function rows(page: Page): Promise<Row[]> {
  // The callback runs in the browser: no named function inside it (tsx, like esbuild, wraps those in a `__name` helper the page lacks).
  const cells = await page.$$eval('#event-rows tr', (trs) =>
    trs.map((tr) =>
      ['seq', 'node', 'kind', 'replay', 'delta']
        .map((name) => tr.querySelector(`td.${name}`)?.textContent ?? '')
        .concat(tr.querySelector('td.fs a')?.getAttribute('href') ?? ''),
    ),
  );
  return cells.map(([seq = '', node = '', kind = '', replay = '', delta = '', fs = '']) => ({ seq: Number(seq), node, kind, replay, delta, fs }));
}

const statusOf = (page: Page, key: string): Promise<string> => page.locator(`#watch-status dd[data-key="${key}"]`).innerText();

async function login(page: Page, control: RunningControl, token: string): Promise<void> {
  await page.goto(`${control.httpUrl}/debug`);
  await page.locator('#token').fill(token);
  await page.locator('#login-form button[type="submit"]').click();
}

async function connected(page: Page): Promise<void> {
  await page.locator('#conn-status[data-state="connected"]').waitFor({ timeout: 20_000 });
  // The console opens on the fleet; the event stream is a view of its own.
  await page.locator('#nav a[data-view="events"]').click();
  await page.locator('#view-events').waitFor();
}

async function applyWatch(page: Page, nodeId: string, replayLimit: number): Promise<string> {
  const previous = (await page.locator('#watch-status dd[data-key="watch_id"]').count()) > 0 ? await statusOf(page, 'watch_id') : undefined;
  await page.locator('#watch-node').fill(nodeId);
  await page.locator('#watch-replay').fill(String(replayLimit));
  await page.locator('#apply').click();
  // The status of the watch it replaces says synced too: wait for the new watch id first.
  if (previous !== undefined)
    await page
      .locator('#watch-status dd[data-key="watch_id"]')
      .filter({ hasNotText: new RegExp(`^${previous}$`) })
      .waitFor();
  await page.locator('#watch-status dd[data-key="synced"]', { hasText: 'yes' }).waitFor();
  return statusOf(page, 'watch_id');
}

async function attach(page: Page, projectId: string, projectToken = ''): Promise<void> {
  await page.locator('#project-preview').evaluate((node) => node.replaceChildren());
  await page.locator('#project-id').fill(projectId);
  await page.locator('#project-token').fill(projectToken);
  await page.locator('#project-form button[type="submit"]').click();
  await page.locator('#project-preview table.actions, #project-preview .error').first().waitFor();
}

const verdict = (page: Page, action: string): Promise<string> => page.locator(`#project-preview tr[data-action="${action}"] .verdict`).innerText();

const control = await startControl(t);
const admin = await adminOf(t, control);
await provision(admin, 'n1', 'n2');
await upsert(admin, 'n1', { alpha: '1', beta: '1' });
await upsert(admin, 'n1', { alpha: '2', gamma: '1' });
await upsert(admin, 'n2', { xray: '1' });
await admin.request('control.project_upsert', {
  project_id: 'p1',
  name: 'P1',
  token: PROJECT_TOKEN,
  mounts: [{ mount_path: '/n1', node_id: 'n1', export_name: 'data' }],
  // Something open without the token: a user attaches then (to a project that grants it nothing, as to an unknown id, it cannot).
  access_policy: { actions: { invoke: 'open' } },
});
const ref = await reference(t, control);

const browser: Browser = await chromium.launch({
  executablePath: '/usr/bin/chromium',
  headless: true,
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking'],
  timeout: 30_000,
});
t.teardown(() => browser.close());

/** Uncaught errors of every page's scripts; checked at the end. */
const pageErrors: string[] = [];

/** A fresh browser session (its own sessionStorage), closed with the test. */
async function newPage(tt: Test): Promise<Page> {
  const context = await browser.newContext({ acceptDownloads: true });
  tt.teardown(() => context.close());
  const page = await context.newPage();
  page.setDefaultTimeout(15_000);
  page.on('pageerror', (error) => pageErrors.push(error.message));
  return page;
}

await t.test('the HTTP listener serves the page, its config, and nothing else', async (tt) => {
  const index = await fetch(`${control.httpUrl}/debug`);
  tt.equal(index.status, 200);
  tt.match(index.headers.get('content-type'), /^text\/html/);
  tt.match(await index.text(), /<script type="module" src="\/debug\/debug.js">/);
  const script = await fetch(`${control.httpUrl}/debug/debug.js`);
  tt.match(script.headers.get('content-type'), /^text\/javascript/, 'an ES module needs a JavaScript type');
  tt.match((await fetch(`${control.httpUrl}/debug/debug.css`)).headers.get('content-type'), /^text\/css/);
  tt.same(await (await fetch(`${control.httpUrl}/debug/config.json`)).json(), { ws_port: Number(new URL(control.url).port) }, 'config.json names the ws port');
  tt.equal((await fetch(`${control.httpUrl}/debug/nope.js`)).status, 404, 'unknown file');
  tt.equal((await fetch(`${control.httpUrl}/debug/nosuch`)).status, 404, 'an unknown name without an extension is not found either, not a bad request');
  const schema = await fetch(`${control.httpUrl}/debug/schemas/service-config.schema.json`);
  tt.equal(schema.status, 200, 'the schemas the console checks editors against');
  tt.same(
    await schema.json(),
    JSON.parse(await readFile(new URL('../../docs/schemas/service-config.schema.json', import.meta.url), 'utf8')),
    'served as in docs/schemas',
  );
  tt.equal((await fetch(`${control.httpUrl}/debug/schemas/debug.js`)).status, 404, 'only schemas under schemas/');
  tt.equal((await fetch(`${control.httpUrl}/debug/schemas/..%2fdebug-page.md`)).status, 400, 'and nothing beside them');
  tt.equal((await fetch(`${control.httpUrl}/debug/..%2f..%2fpackage.json`)).status, 400, 'an escaped traversal is refused');
  tt.equal((await fetch(`${control.httpUrl}/debug/../package.json`)).status, 404, 'a dot segment leaves /debug (the URL is normalized) and finds nothing');
  tt.equal((await fetch(`${control.httpUrl}/debug/debug.js`, { method: 'POST' })).status, 405);
});

await t.test('a wrong token is refused and the page says why', async (tt) => {
  const page = await newPage(tt);
  await login(page, control, 'not-a-token');
  await page.locator('#login-error', { hasText: 'refused' }).waitFor();
  tt.equal(await page.locator('#conn-status').getAttribute('data-state'), 'error');
  tt.ok(await page.locator('#app').isHidden(), 'no controls without a session');
});

await t.test('admin: watch, events, changes, diff, export, filter, unwatch, project preview', async (tt) => {
  const page = await newPage(tt);
  await login(page, control, control.adminToken);
  await connected(page);
  tt.match(await page.locator('#principal').innerText(), /as admin/);

  await page.reload();
  await connected(page);
  tt.ok(await page.locator('#login').isHidden(), 'the token is asked once per browser session');

  const all = ref.events;
  tt.ok(all.length >= 3, `the reference saw the setup (${all.length} events)`);
  // The fleet view holds the connection's first watch: the stream's is another.
  const firstWatch = await applyWatch(page, '', 25);
  tt.match(firstWatch, /^w\d+$/);
  tt.equal(await statusOf(page, 'replayed'), String(all.length));
  tt.equal(await statusOf(page, 'head_seq'), String(all.at(-1)?.seq));
  tt.same(
    await rows(page),
    [...all].reverse().map((e) => ({ seq: e.seq, node: e.node_id, kind: e.kind, replay: 'replay', delta: summary(e), fs: `#fs/${e.node_id}/` })),
    'every event, newest first, with its delta summary; fs links into the console',
  );

  const ups = all.filter((e) => e.node_id === 'n1' && e.kind === 'upsert');
  tt.equal(ups.length, 2, 'two upserts of n1');
  const [first, second] = ups as [EventPayload, EventPayload];
  tt.equal(summary(second), '+1 ~1 -1');

  await page.locator(`#event-rows tr[data-seq="${second.seq}"] td.kind`).click();
  await page.locator('#detail').waitFor();
  const change = (id: string, cell: string): Promise<string> => page.locator(`#detail-body tr[data-service="${id}"] td.${cell}`).innerText();
  const alpha = second.service_delta.updated[0] as DeltaEntry;
  tt.equal(await change('alpha', 'change'), 'updated');
  tt.equal(await change('alpha', 'version'), '1 → 2', 'the version transition');
  tt.equal(await change('alpha', 'hash'), `${alpha.previous_hash} → ${alpha.hash}`, 'the digest transition');
  tt.equal(await change('gamma', 'change'), 'added');
  tt.equal(await change('gamma', 'hash'), `— → ${second.service_delta.added[0]?.hash}`);
  tt.equal(await change('beta', 'change'), 'removed');
  tt.equal(await change('beta', 'version'), '1 → —');
  // The page watches delta events: the services after an event are its view of the node, from the deltas and one read of the node.
  await page.locator('#detail-body .services-after', { hasText: /^2 services after$/ }).waitFor();

  await page.locator(`#event-rows tr[data-seq="${second.seq}"] input.pick`).check();
  await page.locator(`#event-rows tr[data-seq="${first.seq}"] input.pick`).check();
  await page.locator('#diff').waitFor();
  const diffChange = (id: string): Promise<string> => page.locator(`#diff-body tr.service[data-service="${id}"] td.change`).innerText();
  tt.equal(await diffChange('alpha'), 'changed');
  tt.equal(await diffChange('beta'), 'removed');
  tt.equal(await diffChange('gamma'), 'added');
  const versionRow = page.locator('#diff-body tr.field[data-service="alpha"][data-path="/version"]');
  tt.equal(await versionRow.locator('td.a').innerText(), '"1"', 'A side: the older event');
  tt.equal(await versionRow.locator('td.b').innerText(), '"2"');

  const [download] = await Promise.all([page.waitForEvent('download'), page.locator('#export').click()]);
  tt.equal(download.suggestedFilename(), `acheron-events-${first.seq}-${second.seq}.json`);
  const exported = JSON.parse(await readFile(await download.path(), 'utf8')) as Export;
  tt.ok(!Number.isNaN(Date.parse(exported.exported_at)), 'exported_at is a time');
  tt.equal(exported.a.seq, first.seq);
  tt.equal(exported.b.seq, second.seq);
  tt.same(exported.b.service_delta, second.service_delta, 'the events are exported whole');
  tt.ok(Array.isArray(exported.b.changed_services) && !('services' in exported.b), 'as received: delta events');
  const versions = (view: Export['views']['a']): string[][] => view.services.map((s) => [s.service_id, s.version]);
  tt.same(
    versions(exported.views.a),
    [
      ['alpha', '1'],
      ['beta', '1'],
    ],
    'the node as of event A, rebuilt from the deltas',
  );
  tt.same(
    versions(exported.views.b),
    [
      ['alpha', '2'],
      ['gamma', '1'],
    ],
    'and as of event B',
  );
  tt.ok(exported.views.a.complete && exported.views.b.complete && exported.diff.complete, 'both views complete');
  const byId = new Map(exported.diff.services.map((s) => [s.service_id, s]));
  tt.match(byId.get('alpha'), { change: 'changed', version_a: '1', version_b: '2' });
  tt.ok(
    byId.get('alpha')?.fields?.some((f) => f.path === '/version' && f.a === '1' && f.b === '2'),
    'the changed field, both sides',
  );
  tt.match(byId.get('beta'), { change: 'removed' });
  tt.match(byId.get('gamma'), { change: 'added' });

  // A third pick replaces the oldest one.
  const xray = all.find((e) => e.node_id === 'n2' && e.kind === 'upsert') as EventPayload;
  await page.locator(`#event-rows tr[data-seq="${xray.seq}"] input.pick`).check();
  await page.locator('#diff-title', { hasText: `seq ${first.seq} ↔ seq ${xray.seq}` }).waitFor();
  tt.notOk(await page.locator(`#event-rows tr[data-seq="${second.seq}"] input.pick`).isChecked(), 'the first pick was dropped');

  await upsert(admin, 'n2', { xray: '2' });
  await waitFor(() => ref.events.length > all.length, { what: 'the reference sees the live upsert' });
  const liveSeq = (ref.events.at(-1) as EventPayload).seq;
  await page.locator(`#event-rows tr[data-seq="${liveSeq}"]`).waitFor();
  tt.same((await rows(page))[0], { seq: liveSeq, node: 'n2', kind: 'upsert', replay: 'live', delta: '+0 ~1 -0', fs: '#fs/n2/' }, 'a live event on top');

  tt.not(await applyWatch(page, 'n2', 25), firstWatch, 'Apply replaces the watch');
  const n2 = ref.events.filter((e) => e.node_id === 'n2');
  tt.same(
    (await rows(page)).map((r) => [r.seq, r.node]),
    [...n2].reverse().map((e) => [e.seq, 'n2']),
    'only n2 events',
  );
  tt.equal(await statusOf(page, 'node_id'), 'n2');

  await page.locator('#unwatch').click();
  await page.locator('#watch-status dd[data-key="state"]', { hasText: 'ended (unwatched)' }).waitFor();
  const before = await rows(page);
  const head = ref.events.length;
  await upsert(admin, 'n2', { xray: '3' });
  await waitFor(() => ref.events.length > head, { what: 'the reference sees the upsert after the unwatch' });
  // A request on the page's own connection: its reply comes after any event already sent to it.
  await attach(page, 'p1');
  tt.same(await rows(page), before, 'no event after the unwatch');

  tt.match(await page.locator('#project-preview').innerText(), /project token not presented/);
  tt.match(await page.locator('#project-preview li[data-node="n1"]').innerText(), /n1 \(online, 2 services\)/, 'the project node, from the catalog');
  tt.equal(await page.locator('#project-preview li[data-node="n2"]').count(), 0, 'n2 is outside the project');
  for (const action of ['read', 'observe', 'invoke', 'mount', 'admin']) tt.equal(await verdict(page, action), 'allowed', `admin: ${action}`);

  // The fs link opens the console's own browser of the node's exports, through the relay: these
  // nodes are catalog entries without a tunnel, so the relay says the node is unreachable.
  await page.locator('#project-preview li[data-node="n1"] a.fs-link').click();
  await page.locator('#view-fs').waitFor();
  tt.match(await page.locator('#fs-body .fs-error').innerText(), /^fs\/: EHOSTUNREACH/);
});

await t.test('user: the project-scope preview and a refused watch with its hint', async (tt) => {
  const page = await newPage(tt);
  await login(page, control, control.userToken);
  await connected(page);
  tt.match(await page.locator('#principal').innerText(), /as user/);

  await page.locator('#apply').click();
  await page.locator('#watch-refusal').waitFor();
  tt.equal(await page.locator('#watch-refusal').getAttribute('data-code'), 'forbidden');
  tt.match(await page.locator('#watch-refusal .reason').innerText(), /user watches are turned off/);
  tt.match(await page.locator('#watch-refusal .hints').innerText(), /ACHERON_NODE_SERVICE_WATCH_ALLOW_USER=true/);

  await attach(page, 'p1');
  tt.match(await verdict(page, 'read'), /read needs the project token/);
  tt.match(await verdict(page, 'observe'), /observe needs the project token/);
  tt.match(await verdict(page, 'admin'), /admins only/);
  // Without read the server lists no node of the project (they are catalog metadata): the preview says why.
  tt.match(await page.locator('#project-preview').innerText(), /not shown \(read: project p1: read needs the project token/);
  tt.equal(await page.locator('#project-preview li[data-node="n1"]').count(), 0);

  await attach(page, 'p1', 'wrong-token-0123456789');
  tt.match(await page.locator('#project-preview .error').innerText(), /^unauthorized: no project p1 with that project token$/);
  await attach(page, 'nope');
  tt.match(await page.locator('#project-preview .error').innerText(), /^not_found: no project nope this session may use without a project token/);

  await attach(page, 'p1', PROJECT_TOKEN);
  tt.match(await page.locator('#project-preview').innerText(), /project token presented/);
  tt.equal(await verdict(page, 'observe'), 'allowed');
  // Both services keep the default permissions (deny-by-default): hidden from user sessions, in
  // the catalog as in WorldFS (SPEC §8; visibility.test.ts shows the services a user may see).
  tt.match(
    await page.locator('#project-preview li[data-node="n1"]').innerText(),
    /n1 \(online, 0 services\)/,
    'what the session sees of its node: none of its services',
  );
  tt.equal(await page.locator('#project-preview li').count(), 1, 'only the project node');
});

await t.test('user watches allowed: the project decides what the stream shows, or why not', async (tt) => {
  const open = await withEnv({ ACHERON_NODE_SERVICE_WATCH_ALLOW_USER: 'true' }, () => startControl(tt));
  const openAdmin = await adminOf(tt, open);
  await provision(openAdmin, 'n1', 'n2');
  await upsert(openAdmin, 'n1', { alpha: '1' });
  await upsert(openAdmin, 'n2', { xray: '1' });
  await openAdmin.request('control.project_upsert', { project_id: 'p1', mounts: [{ node_id: 'n1' }] });
  await openAdmin.request('control.project_upsert', { project_id: 'closed', mounts: [{ node_id: 'n1' }], access_policy: { actions: { observe: 'deny' } } });

  const page = await newPage(tt);
  await login(page, open, open.userToken);
  await connected(page);

  await page.locator('#apply').click();
  await page.locator('#watch-refusal').waitFor();
  tt.match(await page.locator('#watch-refusal .hints').innerText(), /Attach a project session first/);

  await attach(page, 'closed');
  tt.match(await verdict(page, 'observe'), /observe is denied/);
  await page.locator('#apply').click();
  await page.locator('#watch-refusal .reason', { hasText: 'observe is denied' }).waitFor();
  tt.match(await page.locator('#watch-refusal .hints').innerText(), /observe mode is `deny`/);

  await attach(page, 'p1');
  tt.equal(await verdict(page, 'observe'), 'allowed');
  await applyWatch(page, '', 25);
  tt.ok(await page.locator('#watch-refusal').isHidden(), 'the refusal is gone');
  const seen = await rows(page);
  tt.ok(seen.length > 0, `events of the project (${seen.length})`);
  tt.same([...new Set(seen.map((r) => r.node))], ['n1'], 'only the project node: what a user session sees');
});

t.same(pageErrors, [], 'no script errors on any page');
