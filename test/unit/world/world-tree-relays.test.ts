// Issue 10 item 14: WorldFS keeps one relay per node (renames compare them), and only for nodes
// still in the catalog, so nodes coming and going for a long time do not grow the map.
import t from 'tap';
import type { PublicNode } from '../../../src/protocol/types.gen.js';
import { nodeRelays } from '../../../src/world/world-tree.js';

const nodes = new Map<string, PublicNode>();
const catalog = {
  node: (nodeId: string) => nodes.get(nodeId),
  relay: async (nodeId: string, operation: { op: string }) => ({ node_id: nodeId, op: operation.op }),
  link: () => undefined,
};

t.test('one relay per node, the same each time, sending to its node', async (t) => {
  const relays = nodeRelays(catalog);
  nodes.set('a', {} as PublicNode);
  nodes.set('b', {} as PublicNode);
  const a = relays.relayTo('a');
  t.equal(relays.relayTo('a'), a, 'the same relay for the same node (a rename within a node is allowed)');
  t.not(relays.relayTo('b'), a, 'another node, another relay (a rename across nodes is EXDEV)');
  t.same(await a({ op: 'stat', path: '/' }), { node_id: 'a', op: 'stat' });
  t.equal(relays.size, 2);
  nodes.clear();
});

t.test('10000 nodes coming and going: the map stays as small as the catalog', async (t) => {
  const relays = nodeRelays(catalog);
  let largest = 0;
  for (let i = 0; i < 10_000; i++) {
    nodes.set(`n${i}`, {} as PublicNode);
    relays.relayTo(`n${i}`);
    // At most three nodes are in the catalog at any time.
    nodes.delete(`n${i - 2}`);
    largest = Math.max(largest, relays.size);
  }
  t.ok(largest <= 4, `never more than the catalog plus the new node (largest ${largest})`);
  const kept = relays.relayTo('n9999');
  nodes.delete('n9999');
  nodes.set('n9999', {} as PublicNode);
  t.equal(relays.relayTo('n9999'), kept, 'a node still in the catalog keeps its relay');
  nodes.clear();
});
