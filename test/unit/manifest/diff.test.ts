import t from 'tap';
import { applyDefaults, diffServices, type LoadedService } from '../../../src/manifest/index.js';

function service(serviceId: string, extra: { version?: string; executablePath?: string } = {}): LoadedService {
  const descriptor = applyDefaults({ service_id: serviceId, kind: 'k', ...(extra.version ? { version: extra.version } : {}) }, 'n');
  return { descriptor, source: `${serviceId}.json`, ...(extra.executablePath ? { executablePath: extra.executablePath } : {}) };
}

t.test('added, removed and changed service ids', async (t) => {
  const previous = [service('keep'), service('bump'), service('gone'), service('moved', { executablePath: '/a' })];
  const next = [service('new'), service('keep'), service('bump', { version: '2' }), service('moved', { executablePath: '/b' })];
  t.same(diffServices(previous, next), { added: ['new'], removed: ['gone'], changed: ['bump', 'moved'] });
});

t.test('nothing changes when only key order or the source file differs', async (t) => {
  const before = service('svc');
  const { runtime, ...rest } = before.descriptor;
  const reordered: LoadedService = { descriptor: { runtime: { ...runtime }, ...rest }, source: 'elsewhere/svc.json' };
  t.same(diffServices([before], [reordered]), { added: [], removed: [], changed: [] });
});

t.test('a nested difference is a change; an empty load removes everything', async (t) => {
  const before = service('svc');
  const after = service('svc');
  after.descriptor.runtime.timeout_ms = 1;
  t.same(diffServices([before], [after]).changed, ['svc']);
  t.same(diffServices([before], []), { added: [], removed: ['svc'], changed: [] });
  t.same(diffServices([], [before]), { added: ['svc'], removed: [], changed: [] });
});
