// A catalog larger than the server's node frame cap (16 MiB; the server closes such a frame with
// 1009) is published without its largest services, so every other one is: the node used to send
// it whole and reconnect-loop unpublished, saying nothing.
import t from 'tap';
import { describeUnfit, fitCatalog } from '../../../src/node/catalog-fit.js';
import { NODE_FRAME_MAX_BYTES } from '../../../src/protocol/envelope.js';

const service = (id: string, padChars: number): { service_id: string; kind: string; capabilities: { pad: string } } => ({
  service_id: id,
  kind: 'k',
  capabilities: { pad: 'p'.repeat(padChars) },
});
const head = { node_id: 'n1', node_name: 'host', labels: {} };

t.test('a catalog that fits is published whole', async (t) => {
  const services = [service('a', 10), service('b', 1_000_000)];
  const fit = fitCatalog(head, services);
  t.same(fit.services, services);
  t.same(fit.left, []);
  t.equal(fit.capBytes, NODE_FRAME_MAX_BYTES);
});

t.test('18 services of 1 MB each: the largest are left out until the rest fit the 16 MiB cap', async (t) => {
  const services = Array.from({ length: 18 }, (_, i) => service(`s${String(i).padStart(2, '0')}`, 1_000_000 + (i === 5 ? 5000 : i === 9 ? 3000 : 0)));
  const fit = fitCatalog(head, services);
  t.same(
    fit.left.map((s) => s.service_id),
    ['s05', 's09'],
    'the two largest',
  );
  t.equal(fit.services.length, 16, 'the others, in order');
  t.same(
    fit.services.map((s) => s.service_id),
    services.map((s) => s.service_id).filter((id) => id !== 's05' && id !== 's09'),
  );
  const frameBytes = Buffer.byteLength(
    JSON.stringify({ channel: 'control', type: 'control.node_service_upsert', id: 'x'.repeat(128), payload: { ...head, services: fit.services } }),
  );
  t.ok(frameBytes <= NODE_FRAME_MAX_BYTES, `the frame (${frameBytes} bytes) fits`);
  t.ok(fit.wholeBytes > NODE_FRAME_MAX_BYTES);
  const line = describeUnfit(fit);
  t.match(line, `would be ${fit.wholeBytes} bytes, above the control server's frame cap of ${NODE_FRAME_MAX_BYTES}`);
  t.match(line, /s05 \(1005\d+ bytes\), s09 \(1003\d+ bytes\)/);
});

t.test('a smaller cap', async (t) => {
  const fit = fitCatalog(head, [service('a', 100), service('b', 3000), service('c', 200)], 2500);
  t.same(
    fit.services.map((s) => s.service_id),
    ['a', 'c'],
  );
  t.same(
    fit.left.map((s) => s.service_id),
    ['b'],
  );
});
