// readEntries: a node record read back (from the journal, or from etcd when another server wrote
// it) becomes ServiceEntries; descriptors this server already holds stay the same entry (held once).
import t from 'tap';
import { serviceEntry, serviceHash, type ServiceEntry } from '../../../src/control/delta.js';
import { readEntries } from '../../../src/control/node-record.js';
import { applyDefaults } from '../../../src/manifest/index.js';
import type { ServiceDescriptor } from '../../../src/protocol/types.gen.js';

function service(serviceId: string, version = '1'): ServiceDescriptor {
  return applyDefaults({ service_id: serviceId, kind: 'k', version }, 'n');
}

function entry(s: ServiceDescriptor): ServiceEntry {
  return serviceEntry(s, Buffer.from(JSON.stringify(s)), true);
}

t.test('readEntries keeps the entries whose stored hash is the previous one, in order, and builds the others', async (t) => {
  const [a, b, c] = [service('a'), service('b'), service('c')];
  const previous = new Map([a, b, c].map((s) => [s.service_id, entry(s)]));
  const b2 = service('b', '2');
  const d = service('d');
  // Parsed back, so not the objects the previous entries were made from.
  const read = [a, b2, c, d].map((s) => JSON.parse(JSON.stringify(s)) as ServiceDescriptor);
  const entries = readEntries(read, read.map(serviceHash), previous);
  t.same(
    entries.map((e) => e.service_id),
    ['a', 'b', 'c', 'd'],
  );
  t.equal(entries[0], previous.get('a'), 'an unchanged descriptor is the entry held before');
  t.equal(entries[2], previous.get('c'));
  t.not(entries[1], previous.get('b'), 'a changed one is a new entry');
  t.equal(entries[1]?.version, '2');
  t.equal(entries[1]?.hash, serviceHash(b2));
  t.same(JSON.parse(String(entries[1]?.json)), b2);
  t.equal(entries[3]?.hash, serviceHash(d));
  t.same(JSON.parse(String(entries[3]?.json)), d);
  t.equal(entries[3]?.validated, false, 'what was read back is not taken as validated');
});

t.test('readEntries without stored hashes (or with a count that does not match) compares the JSON bytes', async (t) => {
  const [a, b] = [service('a'), service('b')];
  const previous = new Map([a, b].map((s) => [s.service_id, entry(s)]));
  for (const hashes of [undefined, [serviceHash(a)]]) {
    const entries = readEntries([a, service('b', '3')], hashes, previous);
    t.equal(entries[0], previous.get('a'));
    t.equal(entries[1]?.version, '3');
    t.equal(entries[1]?.hash, serviceHash(service('b', '3')));
  }
});

t.test('readEntries with no previous entries builds every entry with its stored hash', async (t) => {
  const read = [service('x'), service('y')];
  const entries = readEntries(read, ['0xstored-x', '0xstored-y']);
  t.same(
    entries.map((e) => e.hash),
    ['0xstored-x', '0xstored-y'],
    'the stored hashes are taken as they are',
  );
});

t.test('readEntries holds a descriptor once even when another server wrote its keys in another order', async (t) => {
  const a = service('a');
  const previous = new Map([[a.service_id, entry(a)]]);
  const reordered = Object.fromEntries(Object.entries(a).reverse()) as ServiceDescriptor;
  t.not(JSON.stringify(reordered), JSON.stringify(a), 'precondition: other bytes');
  const [read] = readEntries([reordered], [serviceHash(reordered)], previous);
  t.equal(read, previous.get('a'), 'the same canonical descriptor is the entry held before, not a second copy');
});
