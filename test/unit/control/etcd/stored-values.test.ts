// Values Acheron keeps in etcd: JSON text, or (node records) gzipped JSON; `storedObject` reads
// both, with the write's op id apart.
import t from 'tap';
import { gunzipSync } from 'node:zlib';
import { gzipValue, OP_ID_FIELD, storedObject } from '../../../../src/control/etcd/guarded-txn.js';

t.test('a gzipped value reads back as the object it holds, op id apart', async (tt) => {
  const text = JSON.stringify({
    [OP_ID_FIELD]: 'op-1',
    node_id: 'n1',
    services: Array.from({ length: 20 }, (_, i) => ({ service_id: `s${i}`, version: '1', note: 'é✓'.repeat(40) })),
  });
  const value = gzipValue([Buffer.from(text.slice(0, 10)), Buffer.from(text.slice(10))]);
  tt.equal(gunzipSync(value).toString('utf8'), text, 'plain gzip of the parts joined: etcdctl get … | gunzip shows it');
  tt.ok(value.length * 4 < Buffer.byteLength(text), `repetitive JSON shrinks: ${Buffer.byteLength(text)} → ${value.length} bytes`);
  const stored = storedObject(value);
  tt.equal(stored?.opId, 'op-1');
  tt.equal(stored?.object.node_id, 'n1');
  tt.equal((stored?.object.services as unknown[]).length, 20);
  tt.notOk(OP_ID_FIELD in (stored?.object ?? {}), 'the op id is not part of the object');
});

t.test('JSON text still reads, and what is neither is undefined', async (tt) => {
  tt.same(storedObject(Buffer.from('{"op_id":"x","a":1}')), { object: { a: 1 }, opId: 'x' });
  tt.equal(storedObject(Buffer.from('[1,2]')), undefined, 'not an object');
  tt.equal(storedObject(Buffer.from([0x1f, 0x8b, 1, 2, 3])), undefined, 'a broken gzip stream');
});
