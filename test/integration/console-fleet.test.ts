// The operator console (issue 16, docs/console.md) on a real fleet: a control server, two real
// node mounts joined to it, Debian's headless chromium. The fleet shows without a click, a
// service disabled from the console is disabled on the node's own mount and in the view, a user
// token limited by a project sees only its nodes and gets the reason of a refused action, the
// charts count what happens, and a killed node turns offline in the view and its timeline.
import t from 'tap';
import { join } from 'node:path';
import type { Page } from 'playwright-core';
import { startConsoleFleet } from '../helpers/console.js';
import { readJson } from '../helpers/node.js';
import { q, sh } from '../helpers/process.js';

const fleet = await startConsoleFleet(t);
const { control, nodes } = fleet;

const nodeBlock = (page: Page, nodeId: string) => page.locator(`#fleet-body article.node[data-node="${nodeId}"]`);
const serviceRow = (page: Page, nodeId: string, serviceId: string) => nodeBlock(page, nodeId).locator(`tr.service[data-service="${serviceId}"]`);
const count = (page: Page, key: string): Promise<string> => page.locator(`#fleet-counts [data-count="${key}"] .n`).innerText();

await t.test('the fleet shows both nodes and their services on open, without a click', async (tt) => {
  const page = await fleet.newPage(tt, control.adminToken);
  await page.goto(`${control.httpUrl}/debug`);
  await serviceRow(page, 'n2', 'cat').waitFor();
  await serviceRow(page, 'n1', 'echo').waitFor();
  tt.ok(await page.locator('#login').isHidden(), 'no token form: the token was known');
  tt.equal(await page.locator('#fleet-mode').getAttribute('data-mode'), 'watch', 'kept current from a watch');
  tt.same(await page.locator('#fleet-body article.node').evaluateAll((els) => els.map((e) => e.getAttribute('data-node'))), ['n1', 'n2']);
  const head = await nodeBlock(page, 'n1').locator('.node-head').innerText();
  tt.match(head, /online/);
  tt.match(head, /rack=r7/, 'labels');
  tt.match(head, /linux\/\w+ node/, 'platform');
  tt.match(head, /seen \d\d:\d\d:\d\d/, 'last seen');
  tt.match(head, /lease until \d\d:\d\d:\d\d \(in \d+ s\)/, 'lease');
  const echo = serviceRow(page, 'n1', 'echo');
  tt.equal(await echo.getAttribute('data-state'), 'online');
  tt.equal(await echo.locator('td.state').innerText(), '● online', 'the state as a word, beside its colour');
  tt.equal(await echo.locator('td.kind').innerText(), 'test');
  tt.equal(await echo.locator('td.version').innerText(), '1');
  tt.match(await echo.locator('td.detail').innerText(), /restarts 0/, 'supervision detail');
  tt.equal(await serviceRow(page, 'n1', 'fs').locator('td.detail').innerText(), 'built in');
  tt.equal(await serviceRow(page, 'n2', 'cat').locator('td.kind').innerText(), 'filter');
  tt.equal(await count(page, 'nodes-online'), '2');
  tt.equal(await count(page, 'services-online'), '5', 'echo, fail, cat and the two fs providers');
  tt.equal(await count(page, 'services-disabled'), '0');

  await page.locator('#filter-label').fill('rack=r8');
  await nodeBlock(page, 'n1').waitFor({ state: 'detached' });
  tt.equal(await nodeBlock(page, 'n2').count(), 1, 'label filter');
  await page.locator('#filter-label').fill('');
  await page.locator('#filter-kind').selectOption('test');
  await nodeBlock(page, 'n2').waitFor({ state: 'detached' });
  tt.same(
    await nodeBlock(page, 'n1')
      .locator('tr.service')
      .evaluateAll((trs) => trs.map((tr) => tr.getAttribute('data-service'))),
    ['echo', 'fail'],
    'kind filter: the test services',
  );
  await page.locator('#filter-kind').selectOption('');
  await page.locator('#filter-node').fill('n2');
  await nodeBlock(page, 'n1').waitFor({ state: 'detached' });
  await page.locator('#filter-node').fill('');
  await nodeBlock(page, 'n1').waitFor();
});

/** The last action-log line for `action` on `target`, once it has an outcome. */
async function outcome(page: Page, action: string, target: string): Promise<{ outcome: string; text: string }> {
  const line = page.locator(`#action-log-list li[data-action="${action}"][data-target="${target}"]:not([data-outcome="pending"])`).first();
  await line.waitFor();
  return { outcome: (await line.getAttribute('data-outcome')) ?? '', text: await line.innerText() };
}

await t.test('a service disabled from the console is disabled on the node and in the view; enabled again', async (tt) => {
  const page = await fleet.newPage(tt, control.adminToken);
  await page.goto(`${control.httpUrl}/debug`);
  const echo = serviceRow(page, 'n1', 'echo');
  await echo.waitFor();
  tt.ok(await echo.locator('button[data-control="enable"]').isDisabled(), 'enable is off while enabled');

  // A destructive action asks first; cancelled, nothing happens.
  await echo.locator('button[data-control="disable"]').click();
  await page.locator('#confirm[open]').waitFor();
  tt.match(await page.locator('#confirm-message').innerText(), /New invocations are refused/);
  await page.locator('#confirm-cancel').click();
  tt.equal(await page.locator('#action-log-list li').count(), 0, 'cancelled: no action');

  await echo.locator('button[data-control="disable"]').click();
  await page.locator('#confirm-ok').click();
  tt.match(await outcome(page, 'disable', 'n1/echo'), { outcome: 'done' });
  const status = await readJson<{ state: string; reason: string }>(join(nodes.n1.service('echo'), 'status.json'));
  tt.match(status, { state: 'offline', reason: 'disabled by control/disable' }, "the node's own mount says disabled");
  tt.equal((await readJson<{ enabled: boolean }>(join(nodes.n1.service('echo'), 'health.json'))).enabled, false);
  await page.locator('#fleet-body article[data-node="n1"] tr.service[data-service="echo"][data-state="disabled"]').waitFor();
  tt.equal(await echo.locator('td.state').innerText(), '⊘ disabled', 'the fleet view says disabled, in words');
  tt.match(await echo.locator('td.detail').innerText(), /^disabled/);
  tt.equal(await count(page, 'services-disabled'), '1');

  await echo.locator('button[data-control="enable"]').click();
  tt.match(await outcome(page, 'enable', 'n1/echo'), { outcome: 'done' }, 'enable asks nothing');
  tt.equal((await readJson<{ enabled: boolean }>(join(nodes.n1.service('echo'), 'health.json'))).enabled, true);
  await page.locator('#fleet-body article[data-node="n1"] tr.service[data-service="echo"][data-state="online"]').waitFor();
  tt.equal(await count(page, 'services-disabled'), '0');

  const before = (await readJson<{ restarts_total: number }>(join(nodes.n1.service('echo'), 'health.json'))).restarts_total;
  await echo.locator('button[data-control="restart"]').click();
  await page.locator('#confirm-ok').click();
  tt.match(await outcome(page, 'restart', 'n1/echo'), { outcome: 'done' });
  tt.equal((await readJson<{ restarts_total: number }>(join(nodes.n1.service('echo'), 'health.json'))).restarts_total, before + 1, 'restart reached the node');
});

await t.test('a user token limited by a project sees only its nodes, and the reason of a refused action', async (tt) => {
  await fleet.admin('control.project_upsert', { project_id: 'p1', mounts: [{ node_id: 'n1' }], access_policy: { actions: { invoke: 'admin' } } });
  const page = await fleet.newPage(tt, control.userToken, { project_id: 'p1' });
  await page.goto(`${control.httpUrl}/debug`);
  await serviceRow(page, 'n1', 'echo').waitFor();
  tt.match(await page.locator('#principal').innerText(), /as user .*project p1/);
  tt.equal(await page.locator('#fleet-mode').getAttribute('data-mode'), 'poll', 'user watches are off on this server: the list is read again');
  tt.match(await page.locator('#fleet-note').innerText(), /ACHERON_NODE_SERVICE_WATCH_ALLOW_USER/);
  tt.same(await page.locator('#fleet-body article.node').evaluateAll((els) => els.map((e) => e.getAttribute('data-node'))), ['n1'], 'only the project node');
  tt.equal(await count(page, 'nodes-online'), '1');

  await serviceRow(page, 'n1', 'echo').locator('button[data-control="disable"]').click();
  await page.locator('#confirm-ok').click();
  const refused = await outcome(page, 'disable', 'n1/echo');
  tt.equal(refused.outcome, 'refused');
  tt.match(refused.text, /refused: EACCES: project p1: invoke is for admins only/, "the policy's reason");
  tt.equal((await readJson<{ enabled: boolean }>(join(nodes.n1.service('echo'), 'health.json'))).enabled, true, 'nothing changed on the node');

  // Outside the project, a node is absent for this session, even by its address.
  await page.goto(`${control.httpUrl}/debug#service/n2/cat`);
  await page.locator('#service-head', { hasText: 'no node n2' }).waitFor();
  await page.goto(`${control.httpUrl}/debug#fs/n2/`);
  tt.match(await page.locator('#fs-body .fs-error').innerText(), /ENOENT: node n2 is not in project p1/);
});

await t.test('charts: events per second, node timelines, per-service minutes and latency', async (tt) => {
  const page = await fleet.newPage(tt, control.adminToken);
  await page.goto(`${control.httpUrl}/debug#charts`);
  const events = page.locator('#chart-events figure[data-chart="events per second"]');
  await events.waitFor();
  const bars = await events.locator('g.bar').evaluateAll((gs) => gs.map((g) => Number(g.getAttribute('data-value'))));
  tt.equal(bars.length, 60, 'ten minutes of 10 s buckets');
  tt.ok(
    bars.some((v) => v > 0),
    'the events replayed on open are counted',
  );
  tt.same(await page.locator('#chart-timeline g.timeline-row').evaluateAll((gs) => gs.map((g) => [g.getAttribute('data-node'), g.getAttribute('data-now')])), [
    ['n1', 'online'],
    ['n2', 'online'],
  ]);
  tt.match(await page.locator('#chart-timeline figcaption').innerText(), /offline \(hatched\)/, 'the legend names states in words');
  const echo = page.locator('#chart-services .service-charts[data-service="n1/echo"]');
  await echo.locator('figure[data-chart="n1/echo per minute"]').waitFor();
  // Two readings of metrics.json make a minute; an invocation between them shows in it.
  await sh(`echo '{"msg":"between readings"}' > ${q(join(nodes.n1.service('echo'), 'control', 'invoke.json'))}`);
  const invoked = echo.locator('g.bar[data-series="invocations"]:not([data-value="0"])');
  await invoked.first().waitFor({ timeout: 30_000 });
  tt.ok(Number(await invoked.first().getAttribute('data-value')) >= 1, 'invocations per minute from metrics.json');
  tt.equal(await echo.locator('g.line[data-series="p50"]').count(), 1, 'latency p50 line');
  tt.equal(await echo.locator('g.line[data-series="p99"]').count(), 1, 'latency p99 line');
  tt.match(await echo.locator('g.line[data-series="p99"] text').textContent(), /^p99 \d+ ms$/, 'each line says its name and value');
});

await t.test('a node killed turns offline in the view', async (tt) => {
  const page = await fleet.newPage(tt, control.adminToken);
  await page.goto(`${control.httpUrl}/debug`);
  await serviceRow(page, 'n2', 'cat').waitFor();
  tt.equal(await nodeBlock(page, 'n2').getAttribute('data-state'), 'online');
  process.kill(-(nodes.n2.child.pid as number), 'SIGKILL');
  await nodes.n2.exited;
  await page.locator('#fleet-body article.node[data-node="n2"][data-state="offline"]').waitFor({ timeout: 30_000 });
  tt.match(await nodeBlock(page, 'n2').locator('.node-head').innerText(), /○ offline/);
  tt.match(await nodeBlock(page, 'n2').locator('.node-head').innerText(), /no lease/);
  tt.equal(await serviceRow(page, 'n2', 'cat').getAttribute('data-state'), 'offline', 'its services show offline');
  tt.match(await serviceRow(page, 'n2', 'cat').locator('td.detail').innerText(), /node offline: as last published/);
  tt.equal(await count(page, 'nodes-offline'), '1');
  tt.equal(await nodeBlock(page, 'n1').getAttribute('data-state'), 'online', 'the other node is untouched');
  // The timeline shows the change too: an offline stretch after an online one.
  await page.goto(`${control.httpUrl}/debug#charts`);
  const row = page.locator('#chart-timeline g.timeline-row[data-node="n2"]');
  await row.waitFor();
  tt.equal(await row.getAttribute('data-now'), 'offline');
  tt.ok((await row.locator('g.segment[data-state="online"]').count()) >= 1, 'online before');
});

t.same(fleet.pageErrors, [], 'no script errors on any page');
