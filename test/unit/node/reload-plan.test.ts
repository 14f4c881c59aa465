// planReload: what a reload keeps, updates, builds afresh and retires, computed whole and changing
// nothing itself.
import t from 'tap';
import { join } from 'node:path';
import { DRIVERS, manifest } from '../../helpers/node.js';
import { applyDefaults, type LoadedService } from '../../../src/manifest/index.js';
import type { Manifest } from '../../../src/protocol/types.gen.js';
import { problemAt } from '../../../src/protocol/schemas.js';
import { InvocationIds } from '../../../src/runtime/invocation-id.js';
import { LiveService } from '../../../src/runtime/live-service.js';
import type { ServiceSettings } from '../../../src/runtime/service-settings.js';
import { planReload, type CurrentServices } from '../../../src/node/reload-plan.js';
import type { NodeService } from '../../../src/node/service-registry.js';

const settings: ServiceSettings = {
  limits: { maxConcurrency: 1, maxQueue: 1, maxInputBytes: 1024, timeoutMs: 1000, killGraceMs: 0 },
  jobsKeep: 1,
  adapter: {
    spec: () => {
      throw new Error('nothing runs here');
    },
    interpret: () => ({ state: 'ok' }),
  },
};

function loaded(serviceId: string, extra: Record<string, unknown> = {}): LoadedService {
  const m = { ...manifest(serviceId, 'echo'), ...extra } as unknown as Manifest;
  const executable = m.runtime?.executable_path;
  return { descriptor: applyDefaults(m, 'n'), source: `/etc/acheron/${serviceId}.json`, ...(executable ? { executablePath: join(DRIVERS, 'echo') } : {}) };
}

function serviceOf(l: LoadedService): NodeService {
  const runtime = new LiveService({
    serviceId: l.descriptor.service_id,
    runner: { run: () => Promise.reject(new Error('nothing runs here')) },
    ids: new InvocationIds(),
    settings,
  });
  return { descriptor: l.descriptor, source: l.source, hostKind: 'native_process', treePath: `services/${l.descriptor.service_id}`, loadedMs: 0, runtime };
}

function current(loadedServices: LoadedService[]): CurrentServices & { byId: Map<string, NodeService> } {
  const services = loadedServices.map(serviceOf);
  return { builtins: [], loaded: loadedServices, problems: [], services, byId: new Map(services.map((s) => [s.descriptor.service_id, s])) };
}

const kinds = (plan: ReturnType<typeof planReload>) =>
  plan.services.map((s) => `${s.kind} ${s.kind === 'keep' ? s.service.descriptor.service_id : s.loaded.descriptor.service_id}`);

t.test('nothing changed: every service kept as it is, nothing retired', async (t) => {
  const now = current([loaded('a'), loaded('b')]);
  const plan = planReload(now, { services: [loaded('a'), loaded('b')], problems: [] }, () => t.fail('no settings needed') as never);
  t.same(kinds(plan), ['keep a', 'keep b']);
  t.equal(plan.services[0]?.kind === 'keep' && plan.services[0].service, now.byId.get('a'), 'the very same service');
  t.same(plan.retire, []);
  t.equal(plan.loaded[0], now.loaded[0], 'the manifests in force stay the same objects');
});

t.test('a renamed service is one removed and one added: the old runtime retires, the new one is built', async (t) => {
  const now = current([loaded('old'), loaded('other')]);
  const plan = planReload(now, { services: [loaded('new'), loaded('other')], problems: [] }, () => settings);
  t.same(kinds(plan), ['create new', 'keep other']);
  t.same(plan.diff, { added: ['new'], removed: ['old'], changed: [] });
  t.same(plan.retire, [now.byId.get('old')?.runtime]);
  t.equal(now.byId.get('old')?.runtime?.view.isRemoved, false, 'planning removed nothing');
});

t.test('changed and still runnable, of either runtime type: updated in place with new settings (SPEC §5); now catalog-only: built afresh', async (t) => {
  const now = current([loaded('same'), loaded('switched'), loaded('catalog')]);
  const toWasm: LoadedService = {
    ...loaded('switched', { runtime: { type: 'wasm', module_path: '/srv/switched.wasm' } }),
    moduleHash: 'a'.repeat(64),
  };
  const plan = planReload(
    now,
    { services: [loaded('same', { version: '2' }), toWasm, loaded('catalog', { runtime: undefined })], problems: [] },
    () => settings,
  );
  t.same(kinds(plan), ['update same', 'update switched', 'create catalog']);
  const [update, switched, create] = plan.services;
  t.equal(update?.kind === 'update' && update.service, now.byId.get('same'), 'the runtime stays');
  t.equal(update?.kind === 'update' && update.settings, settings);
  t.equal(switched?.kind === 'update' && switched.service, now.byId.get('switched'), 'native_proc to wasm: the runtime (state, config, disable) stays too');
  t.notOk(create?.kind === 'create' && create.settings, 'a catalog-only service gets no settings');
  t.same(plan.retire, [now.byId.get('catalog')?.runtime]);
});

t.test('a file that fails now keeps its previous good version', async (t) => {
  const now = current([loaded('a'), loaded('b')]);
  const problem = problemAt('/etc/acheron/b.json', '/', 'json', 'invalid JSON');
  const plan = planReload(now, { services: [loaded('a', { version: '2' })], problems: [problem] }, () => settings);
  t.same(kinds(plan), ['update a', 'keep b']);
  t.same(plan.retire, []);
  t.ok(plan.problemsChanged);
  t.same(plan.problems, [problem]);
});

t.test('a services directory that cannot be read keeps every service it held, not removed with its state', async (t) => {
  const now = current([loaded('a'), loaded('b')]);
  const problem = problemAt('/etc/acheron/', '/', 'read', 'cannot read services directory: ENOENT');
  const plan = planReload(now, { services: [], problems: [problem] }, () => settings);
  t.same(kinds(plan), ['keep a', 'keep b'], 'both stay (the directory is given with a trailing slash)');
  t.same(plan.diff, { added: [], removed: [], changed: [] });
  t.same(plan.retire, []);
  const elsewhere = planReload(
    now,
    { services: [], problems: [problemAt('/etc/other', '/', 'read', 'cannot read services directory: ENOENT')] },
    () => settings,
  );
  t.same(elsewhere.diff.removed, ['a', 'b'], 'another directory failing does not keep them');
});

t.test('settings that cannot be made: the plan fails whole, before any runtime is retired', async (t) => {
  const now = current([loaded('a-removed'), loaded('b-replaced'), loaded('c-broken')]);
  const fresh = [loaded('b-replaced', { runtime: undefined }), loaded('c-broken', { version: '2' })];
  t.throws(
    () =>
      planReload(now, { services: fresh, problems: [] }, (l) => {
        if (l.descriptor.service_id === 'c-broken') throw new TypeError('c-broken: no settings');
        return settings;
      }),
    /c-broken: no settings/,
  );
  for (const service of now.services) t.equal(service.runtime?.view.isRemoved, false, `${service.descriptor.service_id} still runs`);
});
