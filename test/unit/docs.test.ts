// Docs kept honest (fastify's habit): every errno name, wire code and exit code is documented, the
// monitoring files reference only metrics the server exports, the dashboard is valid JSON, and
// promtool finds the metrics clean and the alert rules valid, each firing on its rule test.
import t from 'tap';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { pino } from 'pino';
import { REPO, tempDir } from '../helpers/node.js';
import { q, sh } from '../helpers/process.js';
import { ERRNO_NAMES } from '../../src/errors/errno.js';
import { WIRE_ERROR_CODES } from '../../src/protocol/errors.js';
import { EventLog } from '../../src/control/event-log.js';
import { FileCatalog } from '../../src/control/file-catalog.js';
import { ControlMetrics } from '../../src/control/metrics.js';
import { refusalLine } from '../../src/cli/invoke-command.js';

const doc = async (path: string): Promise<string> => readFile(join(REPO, 'docs', path), 'utf8');

t.test('every errno name is in docs/errors.md', async (t) => {
  const errors = await doc('errors.md');
  for (const name of ERRNO_NAMES) t.match(errors, new RegExp('`' + name + '`'), name);
});

t.test("errors.md gives acheron invoke's own line as refusalLine prints it, beside acheron: <message>", async (t) => {
  const errors = (await doc('errors.md')).replace(/\s+/g, ' ');
  const form = refusalLine('<service>', { errno: '<ERRNO>', detail: '<why>' }).trim();
  t.ok(errors.includes(`\`${form}\``), `${form} (it said every error is acheron: <message>)`);
});

t.test("operations.md's node watch says what a user token needs of the server", async (t) => {
  const operations = await doc('operations.md');
  const policy = await readFile(join(REPO, 'src', 'control', 'watch-policy.ts'), 'utf8');
  const gate = /flag\('(ACHERON_NODE_SERVICE_WATCH_ALLOW_USER)'/.exec(policy)?.[1] as string;
  t.ok(gate, 'the server reads the gate');
  t.ok(operations.includes(`${gate}=true`), `${gate}=true is in operations.md, where node watch is shown`);
});

t.test('every wire error code is in docs/control-protocol.md', async (t) => {
  const protocol = await doc('control-protocol.md');
  for (const code of WIRE_ERROR_CODES) t.match(protocol, new RegExp('`' + code + '`'), code);
});

t.test('alert rules and dashboard use only exported metrics', async (t) => {
  const dir = await tempDir(t);
  const log = pino({ level: 'silent' });
  const events = await EventLog.open({ dir, log });
  const catalog = await FileCatalog.open(join(dir, 'catalog.journal'), events, { leaseTtlMs: 60_000, offlineGraceMs: 15_000, log });
  const metrics = new ControlMetrics(catalog, events, 'host:18790', async () => undefined);
  const exported = new Set((await metrics.registry.getMetricsAsJSON()).map((m) => m.name));
  const used = new Set<string>();
  const alerts = await doc('monitoring/acheron-alerts.yml');
  const dashboard = JSON.parse(await doc('monitoring/acheron-dashboard.json')) as { panels: Array<{ targets: Array<{ expr: string }> }> };
  const texts = [alerts, ...dashboard.panels.flatMap((p) => p.targets.map((target) => target.expr))];
  for (const text of texts) for (const m of text.matchAll(/\bacheron_[a-z_]+/g)) used.add(m[0]);
  t.ok(used.size > 5, `found ${used.size} metric names`);
  for (const name of used) t.ok(exported.has(name), `${name} is exported`);
  const text = await metrics.registry.metrics();
  for (const role of ['admin', 'user', 'node', 'joiner', 'peer'])
    t.match(text, new RegExp(`^acheron_connections\\{role="${role}",server_id="host:18790"\\} 0$`, 'm'), `a ${role} series before any connection`);
  const lint = await sh('promtool check metrics', { input: text });
  t.equal(lint.code, 0, `promtool check metrics is clean: ${lint.stdout}${lint.stderr}`);
  await catalog.close();
  await events.close();
});

// promtool from Debian's prometheus package (make system-deps takes out just that binary): a real parser and evaluator of the rules.
t.test('the alert rules parse (promtool check rules) and fire when they should (promtool test rules)', async (t) => {
  const version = await sh('promtool --version');
  t.equal(version.code, 0, "promtool is installed (make system-deps takes it out of Debian's prometheus package)");
  const checked = await sh(`promtool check rules ${q(join(REPO, 'docs/monitoring/acheron-alerts.yml'))}`);
  t.equal(checked.code, 0, `promtool check rules: ${checked.stdout}${checked.stderr}`);
  t.match(checked.stdout, /SUCCESS: 9 rules found/);
  const tested = await sh(`promtool test rules ${q(join(REPO, 'docs/monitoring/acheron-alerts.test.yml'))}`);
  t.equal(tested.code, 0, `promtool test rules: ${tested.stdout}${tested.stderr}`);
  const alerts = [...(await doc('monitoring/acheron-alerts.yml')).matchAll(/- alert: (\w+)/g)].map((m) => m[1]);
  const tests = await doc('monitoring/acheron-alerts.test.yml');
  for (const alert of alerts) t.match(tests, new RegExp(`alertname: ${alert}\\n`), `${alert} has a rule test`);
});
