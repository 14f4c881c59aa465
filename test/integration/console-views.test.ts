// The operator console's views on a real fleet (issue 16, docs/console.md): the service page
// (README rendered as text, the invoke editor pre-filled from TEMPLATE.json and checked against
// the input schema, the result on the node, config.json checked and saved, live files and jobs),
// the read-only fs/ browser, and the event stream resuming with since_seq after the
// control server restarts.
import t from 'tap';
import { join } from 'node:path';
import type { Page } from 'playwright-core';
import { startConsoleFleet } from '../helpers/console.js';
import { readJson } from '../helpers/node.js';
import { q, sh, waitFor } from '../helpers/process.js';

const fleet = await startConsoleFleet(t);
const { nodes } = fleet;
let control = fleet.control;

async function openConsole(tt: Parameters<typeof fleet.newPage>[0], hash = ''): Promise<Page> {
  const page = await fleet.newPage(tt, control.adminToken);
  await page.goto(`${control.httpUrl}/debug${hash}`);
  await page.locator('#conn-status[data-state="connected"]').waitFor();
  return page;
}

await t.test('service page: README as text, invoke checked against the schema, its result on the node', async (tt) => {
  const page = await openConsole(tt);
  await page.locator('#fleet-body tr.service[data-service="echo"] td.service-id a').click();
  await page.locator('#view-service').waitFor();
  tt.equal(await page.locator('#service-title').innerText(), 'n1/echo');
  tt.match(await page.locator('#service-head').innerText(), /online echo · kind test · version 1/);

  const readme = page.locator('#service-readme');
  tt.equal(await readme.locator('h3').innerText(), 'echo', 'a heading');
  tt.equal(await readme.locator('strong').innerText(), 'it');
  tt.equal(await readme.locator('li').count(), 2, 'a list');
  tt.match(await readme.innerText(), /<img src=x onerror="window.pwned=1"> stays text/, 'markup in help_md shows as text');
  tt.equal(await readme.locator('img').count(), 0, 'and is never HTML');
  tt.equal(await page.evaluate('window.pwned'), undefined);
  tt.match(await page.locator('#service-descriptor details[data-part="schema"] pre').innerText(), /"required": \[\s*"msg"\s*\]/, 'the schema');

  const editor = page.locator('#invoke-editor');
  await page.locator('#invoke-note', { hasText: 'from TEMPLATE.json' }).waitFor();
  tt.same(JSON.parse(await editor.inputValue()), { msg: 'hi' }, 'pre-filled from TEMPLATE.json');
  tt.ok(await page.locator('#invoke-send').isEnabled());
  await editor.fill('{"msg": 5}');
  tt.equal(await page.locator('#invoke-problems li').innerText(), '/msg: must be string', 'checked before sending');
  tt.ok(await page.locator('#invoke-send').isDisabled(), 'nothing to send while invalid');
  await editor.fill('{"other": 1');
  tt.match(await page.locator('#invoke-problems li').innerText(), /^\/: not JSON/);
  await editor.fill('{}');
  tt.equal(await page.locator('#invoke-problems li').innerText(), "/: must have required property 'msg'");

  const before = Number((await readJson(join(nodes.n1.service('echo'), 'metrics.json'))).invokes_total);
  await editor.fill('{"msg": "from the console"}');
  await page.locator('#invoke-send').click();
  const outcome = page.locator('#invoke-outcome[data-outcome="ok"]');
  await outcome.waitFor();
  const shown = JSON.parse(await outcome.locator('pre').innerText()) as { echo: unknown; invocation_id: string };
  tt.same(shown.echo, { msg: 'from the console' }, "the driver's result, shown");
  const result = await readJson<{ echo: unknown; invocation_id: string }>(join(nodes.n1.service('echo'), 'result.json'));
  tt.same(result, shown, "the same result in the node's result.json");
  tt.equal(Number((await readJson(join(nodes.n1.service('echo'), 'metrics.json'))).invokes_total), before + 1, 'one invocation');
  tt.match(await page.locator('#action-log-list li[data-action="invoke"]').first().innerText(), /invoke n1\/echo: done \(ok\)/);

  // Live files and jobs, refreshed while the page is open. A refresh read during the run (invokes_total
  // counts at the start) may be the one shown first: waited for until the run's end shows.
  await page.locator('#live-files .live-file[data-file="metrics.json"] pre', { hasText: `"invokes_total": ${before + 1}` }).waitFor();
  await page.locator('#live-files .live-file[data-file="status.json"] pre', { hasText: '"state": "ok"' }).waitFor();
  tt.match(await page.locator('#live-files .live-file[data-file="status.json"] pre').innerText(), /"state": "ok"/);
  tt.equal(await page.locator('#live-files .live-file[data-file="last_error.txt"] pre').innerText(), '(empty)');
  const job = page.locator(`#jobs details[data-job="${result.invocation_id}"]`);
  await job.locator('summary', { hasText: /ok · \d+ ms · exit 0/ }).waitFor();
  tt.match(await job.locator('summary').innerText(), /ok · \d+ ms · exit 0/);
  await job.locator('summary').click();
  tt.match(await job.locator('div[data-file="request.json"] pre').innerText(), /from the console/, "the job's request.json");

  // A refused invocation shows the node's errno and reason.
  await page.locator('#service-controls button[data-control="disable"]').click();
  await page.locator('#confirm-ok').click();
  await page.locator('#action-log-list li[data-action="disable"][data-outcome="done"]').waitFor();
  await page.locator('#invoke-send').click();
  const refused = page.locator('#invoke-outcome[data-outcome="refused"]');
  await refused.waitFor();
  tt.match(await refused.innerText(), /refused: EPERM: .*disabled/, "the node's refusal, with its reason");
  await page.locator('#service-controls button[data-control="enable"]').click();
  await page.locator('#action-log-list li[data-action="enable"][data-outcome="done"]').waitFor();

  // A failed invocation shows what the node read back: its error and status.
  await page.goto(`${control.httpUrl}/debug#service/n1/fail`);
  await page.locator('#invoke-note', { hasText: 'from TEMPLATE.json' }).waitFor();
  tt.equal(await page.locator('#invoke-editor').inputValue(), '{}', 'no example: an empty object');
  await page.locator('#invoke-send').click();
  const failed = page.locator('#invoke-outcome[data-outcome="failed"]');
  await failed.waitFor();
  tt.match(await failed.locator('.outcome-head').innerText(), /^failed \(error\): .*fail driver: something went wrong/);
  tt.match(await page.locator('#action-log-list li[data-action="invoke"][data-target="n1/fail"]').innerText(), /done \(failed \(error\)\)/);
  await page.locator('#live-files .live-file[data-file="last_error.txt"] pre', { hasText: 'fail driver: something went wrong' }).waitFor();
});

await t.test('service page: config.json checked against its schema and saved on the node', async (tt) => {
  const page = await openConsole(tt, '#service/n1/echo');
  const editor = page.locator('#config-editor');
  await page.locator('#config-note', { hasText: 'as the node has it' }).waitFor();
  tt.same(JSON.parse(await editor.inputValue()), {}, "the node's config.json");
  await editor.fill('{"timeot_ms": 9000}');
  tt.equal(await page.locator('#config-problems li').innerText(), '/timeot_ms: unknown key: must NOT have additional properties');
  await editor.fill('{"timeout_ms": 0}');
  tt.equal(await page.locator('#config-problems li').innerText(), '/timeout_ms: must be >= 1');
  tt.ok(await page.locator('#config-send').isDisabled());
  await editor.fill('{"timeout_ms": 9000, "supervision": {"cooldown_ms": 10}}');
  await page.locator('#config-send').click();
  await page.locator('#config-outcome[data-outcome="ok"]').waitFor();
  tt.same(await readJson(join(nodes.n1.service('echo'), 'config.json')), { timeout_ms: 9000, supervision: { cooldown_ms: 10 } }, 'saved on the node');
});

await t.test("files: a read-only browser of the node's fs/ exports through the relay", async (tt) => {
  const page = await openConsole(tt);
  await page.locator('#fleet-body article[data-node="n1"] a.fs-link').click();
  await page.locator('#fs-body table.fs-entries tr[data-name="data"]').waitFor();
  await page.locator('#fs-body tr[data-name="data"] a').click();
  await page.locator('#fs-body tr[data-name="hello.txt"]').waitFor();
  tt.same(
    await page
      .locator('#fs-body tr.fs-entries, #fs-body table.fs-entries tbody tr')
      .evaluateAll((trs) => trs.map((tr) => [tr.getAttribute('data-name'), tr.getAttribute('data-kind')])),
    [
      ['sub', 'dir'],
      ['hello.txt', 'file'],
    ],
    'directories first',
  );
  tt.equal(await page.locator('#fs-body tr[data-name="hello.txt"] td.size').innerText(), '14');
  await page.locator('#fs-body tr[data-name="hello.txt"] button').click();
  tt.equal(await page.locator('#fs-preview pre.file-text').innerText(), 'hello from n1\n');
  await page.locator('#fs-body tr[data-name="sub"] a').click();
  await page.locator('#fs-body tr[data-name="deep.txt"]').waitFor();
  tt.equal(await page.locator('#fs-title').innerText(), 'n1/fs/data/sub');
  tt.equal(await page.locator('#fs-body button.link').count(), 1, 'files open for reading only: no writing control');
});

await t.test('the event stream resumes with since_seq after the control server restarts', async (tt) => {
  const page = await openConsole(tt, '#events');
  await page.locator('#watch-replay').fill('5');
  await page.locator('#apply').click();
  await page.locator('#watch-status dd[data-key="synced"]', { hasText: 'yes' }).waitFor();
  const seqs = async (): Promise<number[]> => page.locator('#event-rows tr').evaluateAll((trs) => trs.map((tr) => Number(tr.getAttribute('data-seq'))));
  const before = await seqs();
  tt.equal(before.length, 5, 'the replay');

  control = await control.restart();
  await page.locator('#watch-status dd[data-key="resumed"]').waitFor({ timeout: 30_000 });
  tt.match(
    await page.locator('#watch-status dd[data-key="resumed"]').innerText(),
    new RegExp(`^after seq ${Math.max(...before)} `),
    'from the last seq it had',
  );
  tt.equal(await page.locator('#watch-status dd[data-key="state"]').innerText(), 'live');

  // A change on a node after the restart reaches the resumed stream and the fleet: an upsert, or an
  // online event carrying it when a loaded machine let n2's lease run out before it reconnected.
  await sh(`echo > ${q(join(nodes.n2.service('cat'), 'control', 'disable'))}`);
  const newer = page.locator('#event-rows tr[data-node="n2"]').filter({ has: page.locator('td.kind', { hasText: /^(upsert|online)$/ }) });
  await waitFor(async () => (await newer.evaluateAll((trs) => trs.map((tr) => Number(tr.getAttribute('data-seq'))))).some((seq) => seq > Math.max(...before)), {
    what: 'an n2 upsert (or online event) after the restart',
    timeoutMs: 30_000,
  });
  const after = await seqs();
  tt.equal(new Set(after).size, after.length, 'no event twice');
  tt.same(
    [...after].sort((a, b) => b - a),
    after,
    'still newest first',
  );
  tt.same(after.slice(after.length - before.length), before, 'the events before the restart are kept');
  await page.locator('#nav a[data-view="fleet"]').click();
  await page.locator('#fleet-body article[data-node="n2"] tr.service[data-service="cat"][data-state="disabled"]').waitFor({ timeout: 30_000 });
  tt.equal(await page.locator('#fleet-mode').getAttribute('data-mode'), 'watch', 'the fleet resumed its watch too');
});

t.same(fleet.pageErrors, [], 'no script errors on any page');
