// An upsert frame read in parts (src/control/upsert-frame.ts): the frame with `payload.services`
// emptied, and each descriptor's text, or the stored descriptor whose JSON it is. Whatever the
// split says must agree with JSON.parse of the whole frame; any doubt falls back to it.
import t from 'tap';
import fc from 'fast-check';
import { readFile } from 'node:fs/promises';
import { incomingServices, parseRequest, SPLIT_MAX_SERVICES, splitServices } from '../../../src/control/upsert-frame.js';
import { serviceEntry, type ServiceEntry } from '../../../src/control/delta.js';
import { applyDefaults } from '../../../src/manifest/index.js';
import type { ServiceDescriptor } from '../../../src/protocol/types.gen.js';

const service = (id: string, extra: Record<string, unknown> = {}): ServiceDescriptor => applyDefaults({ service_id: id, kind: 'k', ...extra }, 'n');
const frameOf = (payload: Record<string, unknown>, id = 'r1'): Buffer =>
  Buffer.from(JSON.stringify({ channel: 'control', type: 'control.node_service_upsert', id, payload }));
const stored = (services: ServiceDescriptor[], validated = true): ServiceEntry[] =>
  services.map((s) => serviceEntry(s, Buffer.from(JSON.stringify(s)), validated));
const bytes = (text: string): Buffer => Buffer.from(text);
/** Big enough for the split (small frames are parsed whole). */
const padding = { help_md: 'x'.repeat(9000) };

t.test('splitServices: parts, tricky strings, the rest of the frame intact', async (t) => {
  const services = [service('a', { description: 'q"uo\\te ]},[{ "services":[ é✓😀' }), service('b', { 'x-note': '[ü]' }), service('c')];
  const text = frameOf({ node_id: 'n', labels: { services: '[1]' }, services, platform: { os: 'linux' } });
  const split = splitServices(text, () => undefined);
  t.ok(split, 'split');
  t.same(JSON.parse(split?.rest ?? ''), {
    channel: 'control',
    type: 'control.node_service_upsert',
    id: 'r1',
    payload: { node_id: 'n', labels: { services: '[1]' }, services: [], platform: { os: 'linux' } },
  });
  t.same(
    split?.services.map((p) => JSON.parse(p as string) as unknown),
    services,
    'each part is one descriptor',
  );
  t.equal(split?.matchedFor, 'n');
});

t.test('splitServices: a stored descriptor is matched in place, whitespace around it allowed', async (t) => {
  const services = [service('a', { 'x-name': 'é✓😀' }), service('b'), service('c')];
  const entries = stored([services[0] as ServiceDescriptor, service('b', { version: '2' }), services[2] as ServiceDescriptor]);
  const text = Buffer.from(frameOf({ node_id: 'n', services }).toString().replace('"services":[', '"services": [ ').replace('},{"version"', '} ,\n{"version"'));
  const split = splitServices(text, (nodeId) => (nodeId === 'n' ? entries : undefined));
  t.equal(split?.services[0], entries[0], 'first: the stored entry');
  t.type(split?.services[1], 'string', 'second differs: its text');
  t.equal(split?.services[2], entries[2], 'third: the stored entry');
  const unvalidated = splitServices(text, () => stored(services, false));
  t.ok(
    unvalidated?.services.every((p) => typeof p === 'string'),
    'entries not validated in this process are never matched',
  );
});

t.test('splitServices: odd shapes are refused (the whole frame is parsed instead)', async (t) => {
  t.equal(
    splitServices(bytes('{"payload":{"services":[1],"services":[2]}}'), () => undefined),
    undefined,
    'two services arrays',
  );
  t.equal(
    splitServices(bytes('{"payload":{"services":[1]},"payload":{"services":[]}}'), () => undefined),
    undefined,
    'two payloads',
  );
  t.equal(
    splitServices(bytes('{"payload":{"node_id":"n"}}'), () => undefined),
    undefined,
    'no services',
  );
  t.equal(
    splitServices(bytes('{"payload":{"services":{"a":1}}}'), () => undefined),
    undefined,
    'services not an array',
  );
  t.equal(
    splitServices(bytes('{"payload":{"services":[1]}'), () => undefined),
    undefined,
    'unbalanced',
  );
  t.equal(
    splitServices(bytes('{"payload":{"services":["1]}}'), () => undefined),
    undefined,
    'unterminated string',
  );
});

t.test('parseRequest: an upsert comes back with services emptied and its descriptors aside; anything else as JSON.parse', async (t) => {
  const services = [service('a', padding), service('b', padding)];
  const text = frameOf({ node_id: 'n', services });
  const frame = parseRequest(text, () => stored([services[0] as ServiceDescriptor])) as { payload: { services: unknown[] } };
  t.same(frame.payload.services, [], 'services emptied');
  const other = JSON.stringify({ channel: 'control', type: 'control.node_get', id: 'x', payload: { node_id: 'n', services } });
  t.same(
    parseRequest(bytes(other), () => undefined),
    JSON.parse(other),
    'another op: parsed whole',
  );
  const broken = bytes(text.toString().replace('"service_id":"b"', '"service_id":"b",,'));
  t.throws(() => parseRequest(broken, () => undefined), SyntaxError, "a descriptor that is not JSON: the whole frame's error");
  let whole = '';
  try {
    JSON.parse(broken.toString());
  } catch (error) {
    whole = (error as Error).message;
  }
  t.throws(() => parseRequest(broken, () => undefined), { message: whole }, 'the same message as JSON.parse of the frame');
});

t.test("parseRequest: a second node_id after the array never passes one node's stored descriptors as another's", async (t) => {
  const victims = [service('db', padding)];
  const text = Buffer.from(frameOf({ node_id: 'victim', services: victims }).toString().replace(/\}\}$/, ',"node_id":"attacker"}}'));
  const byNode = (nodeId: string) => (nodeId === 'victim' ? stored(victims) : undefined);
  t.equal(splitServices(text, byNode)?.matchedFor, 'victim', "the scan matched the victim's descriptors");
  const frame = parseRequest(text, byNode) as { payload: { node_id: string; services: unknown[] } };
  t.equal(frame.payload.node_id, 'attacker', 'JSON.parse keeps the last node_id');
  t.equal(frame.payload.services.length, 1, 'so the frame was parsed whole: its descriptors are checked as sent, none passes as known');
});

t.test('property: the parts and the rest put back together are the frame', async (t) => {
  const json = fc.jsonValue({ maxDepth: 3, stringUnit: 'binary' });
  fc.assert(
    fc.property(fc.array(json, { maxLength: 5 }), json, fc.boolean(), (services, other, spaced) => {
      const payload = { node_id: 'n', other, services };
      const text = spaced ? JSON.stringify({ type: 'x', payload }, null, 1) : JSON.stringify({ type: 'x', payload });
      const split = splitServices(bytes(text), () => undefined);
      if (!split) return false;
      const rest = JSON.parse(split.rest) as { payload: { services: unknown[] } };
      rest.payload.services = split.services.map((p) => JSON.parse(p as string) as unknown);
      return JSON.stringify(rest) === JSON.stringify(JSON.parse(text));
    }),
  );
  t.pass('agrees with JSON.parse');
});

t.test("the split takes catalogs up to the payload schema's maxItems; one more is parsed whole, for the schema to refuse", async (t) => {
  const schema = JSON.parse(await readFile(new URL('../../../docs/schemas/control-protocol.schema.json', import.meta.url), 'utf8')) as {
    definitions: Record<string, { properties?: { services?: { maxItems?: number } } }>;
  };
  const maxItems = Object.values(schema.definitions).find((d) => d.properties?.services?.maxItems !== undefined)?.properties?.services?.maxItems;
  t.equal(SPLIT_MAX_SERVICES, maxItems, 'the same bound as the schema');
  const few = [service('a')];
  const manyIds = (count: number): ServiceDescriptor[] => Array.from({ length: count }, (_, i) => ({ ...few[0], service_id: `s${i}` }) as ServiceDescriptor);
  const atBound = parseRequest(frameOf({ node_id: 'n', services: manyIds(SPLIT_MAX_SERVICES) }), () => undefined) as { payload: { services: unknown[] } };
  t.equal(atBound.payload.services.length, 0, 'at the bound: split (the descriptors kept aside)');
  t.equal(incomingServices(atBound.payload as never).length, SPLIT_MAX_SERVICES);
  const over = parseRequest(frameOf({ node_id: 'n', services: manyIds(SPLIT_MAX_SERVICES + 1) }), () => undefined) as { payload: { services: unknown[] } };
  t.equal(over.payload.services.length, SPLIT_MAX_SERVICES + 1, 'one more: parsed whole, so the schema sees every element');
});
