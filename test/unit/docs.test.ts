// Docs kept honest (fastify's habit): every errno name, wire code and exit code is documented, the
// monitoring files reference only metrics the server exports, and the dashboard is valid JSON.
import t from 'tap';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { pino } from 'pino';
import { REPO, tempDir } from '../helpers/node.js';
import { ERRNO_NAMES } from '../../src/vfs/errors.js';
import { WIRE_ERROR_CODES } from '../../src/protocol/errors.js';
import { EventLog } from '../../src/control/event-log.js';
import { Catalog } from '../../src/control/catalog.js';
import { ControlMetrics } from '../../src/control/metrics.js';

const doc = async (path: string): Promise<string> => readFile(join(REPO, 'docs', path), 'utf8');

t.test('every errno name is in docs/errors.md', async (t) => {
  const errors = await doc('errors.md');
  for (const name of ERRNO_NAMES) t.match(errors, new RegExp('`' + name + '`'), name);
});

t.test('every wire error code is in docs/control-protocol.md', async (t) => {
  const protocol = await doc('control-protocol.md');
  for (const code of WIRE_ERROR_CODES) t.match(protocol, new RegExp('`' + code + '`'), code);
});

t.test('alert rules and dashboard use only exported metrics', async (t) => {
  const dir = await tempDir(t);
  const log = pino({ level: 'silent' });
  const events = await EventLog.open({ dir, log });
  const catalog = await Catalog.open(join(dir, 'catalog.journal'), events, { leaseTtlMs: 60_000, offlineGraceMs: 15_000, log });
  const metrics = new ControlMetrics(catalog, events);
  const exported = new Set((await metrics.registry.getMetricsAsJSON()).map((m) => m.name));
  const used = new Set<string>();
  const alerts = await doc('monitoring/acheron-alerts.yml');
  const dashboard = JSON.parse(await doc('monitoring/acheron-dashboard.json')) as { panels: Array<{ targets: Array<{ expr: string }> }> };
  const texts = [alerts, ...dashboard.panels.flatMap((p) => p.targets.map((target) => target.expr))];
  for (const text of texts) for (const m of text.matchAll(/\bacheron_[a-z_]+/g)) used.add(m[0]);
  t.ok(used.size > 5, `found ${used.size} metric names`);
  for (const name of used) t.ok(exported.has(name), `${name} is exported`);
  await catalog.close();
  await events.close();
});
