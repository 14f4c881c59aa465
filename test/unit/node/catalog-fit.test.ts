// A catalog larger than the server's node frame cap (16 MiB; the server closes such a frame with
// 1009) is published without its largest services, so every other one is: the node used to send
// it whole and reconnect-loop unpublished, saying nothing.
import t from 'tap';
import { pino } from 'pino';
import { catalogJson, describeUnfit, fitCatalog } from '../../../src/node/catalog-fit.js';
import { CatalogPublisher } from '../../../src/node/catalog-publisher.js';
import type { ControlClient } from '../../../src/protocol/control-client.js';
import { NODE_FRAME_MAX_BYTES } from '../../../src/protocol/envelope.js';
import type { ServiceDescriptor } from '../../../src/protocol/types.gen.js';

const service = (id: string, padChars: number): { service_id: string; kind: string; capabilities: { pad: string } } => ({
  service_id: id,
  kind: 'k',
  capabilities: { pad: 'p'.repeat(padChars) },
});
const head = { node_id: 'n1', node_name: 'host', labels: {} };
/** As the publisher fits them: sized by the JSON it wrote for its digest. */
const fit = <T extends { service_id: string }>(services: T[], capBytes?: number) => fitCatalog(head, services, catalogJson(services).json, capBytes);

t.test('a catalog that fits is published whole', async (t) => {
  const services = [service('a', 10), service('b', 1_000_000)];
  const fitted = fit(services);
  t.same(fitted.services, services);
  t.same(fitted.left, []);
  t.equal(fitted.capBytes, NODE_FRAME_MAX_BYTES);
});

t.test('18 services of 1 MB each: the largest are left out until the rest fit the 16 MiB cap', async (t) => {
  const services = Array.from({ length: 18 }, (_, i) => service(`s${String(i).padStart(2, '0')}`, 1_000_000 + (i === 5 ? 5000 : i === 9 ? 3000 : 0)));
  const fitted = fit(services);
  t.same(
    fitted.left.map((s) => s.service_id),
    ['s05', 's09'],
    'the two largest',
  );
  t.equal(fitted.services.length, 16, 'the others, in order');
  t.same(
    fitted.services.map((s) => s.service_id),
    services.map((s) => s.service_id).filter((id) => id !== 's05' && id !== 's09'),
  );
  const frameBytes = Buffer.byteLength(
    JSON.stringify({ channel: 'control', type: 'control.node_service_upsert', id: 'x'.repeat(128), payload: { ...head, services: fitted.services } }),
  );
  t.ok(frameBytes <= NODE_FRAME_MAX_BYTES, `the frame (${frameBytes} bytes) fits`);
  t.ok(fitted.wholeBytes > NODE_FRAME_MAX_BYTES);
  const line = describeUnfit(fitted);
  t.match(line, `would be ${fitted.wholeBytes} bytes, above the control server's frame cap of ${NODE_FRAME_MAX_BYTES}`);
  t.match(line, /s05 \(1005\d+ bytes\), s09 \(1003\d+ bytes\)/);
});

t.test('a smaller cap', async (t) => {
  const fitted = fit([service('a', 100), service('b', 3000), service('c', 200)], 2500);
  t.same(
    fitted.services.map((s) => s.service_id),
    ['a', 'c'],
  );
  t.same(
    fitted.left.map((s) => s.service_id),
    ['b'],
  );
});

t.test('a catalog change is written once per service: the size check reuses the JSON of the digest', async (t) => {
  const services = Array.from({ length: 5 }, (_, i) => ({ ...service(`s${i}`, 100), state: 'ready' }) as unknown as ServiceDescriptor);
  const sent: unknown[] = [];
  const client = { isOpen: true, request: async (_type: string, payload: unknown) => void sent.push(payload) } as unknown as ControlClient;
  const publisher = new CatalogPublisher({
    nodeId: 'n1',
    node: { node_name: 'host', platform: {}, labels: {} },
    catalog: () => services,
    log: pino({ level: 'silent' }),
  });
  const stringify = JSON.stringify;
  let written = 0;
  JSON.stringify = ((value: unknown, ...rest: never[]) => {
    if (services.includes(value as ServiceDescriptor)) written++;
    return stringify(value, ...rest);
  }) as typeof JSON.stringify;
  try {
    await publisher.publishOrSay(client, true, () => true);
  } finally {
    JSON.stringify = stringify;
  }
  t.equal(sent.length, 1, 'upserted');
  t.equal(written, 0, 'no service written again for its size');
  t.equal(publisher.error, null, 'it fits');
});
