// ConnectionSet: every connection, and each node's tunnels looked up without a scan; a joiner filed
// under its node once its join made it one, and unfiled under its old name when it goes.
import t from 'tap';
import { ConnectionSet } from '../../../src/control/connection-set.js';
import type { Principal } from '../../../src/control/principal.js';

const conn = (principal: Principal): { principal: Principal } => ({ principal });

t.test("a node's tunnels, oldest first; other roles are in the set but under no node", async (t) => {
  const set = new ConnectionSet<{ principal: Principal }>();
  const a1 = conn({ kind: 'node', nodeId: 'a' });
  const b = conn({ kind: 'node', nodeId: 'b' });
  const a2 = conn({ kind: 'node', nodeId: 'a' });
  const admin = conn({ kind: 'admin', tokenId: 't' });
  [a1, b, a2, admin].forEach((c) => set.add(c));
  t.equal([...set].length, 4);
  t.same([...set], [a1, b, a2, admin], 'iterates every connection in the order added');
  t.same(set.ofNode('a'), [a1, a2]);
  t.same(set.ofNode('c'), [], 'a node with no tunnel here: none');
  t.ok(set.hasNode('b'));
  set.delete(a1);
  t.same(set.ofNode('a'), [a2]);
  set.delete(a2);
  t.notOk(set.hasNode('a'), 'its last tunnel gone, the node is not here');
  t.same(set.ofNode('a'), []);
  set.delete(a2);
  t.equal([...set].length, 2, 'deleting twice is harmless');
});

t.test('a joiner is filed under its node by reindex, and deleted from there after', async (t) => {
  const set = new ConnectionSet<{ principal: Principal }>();
  const joiner = conn({ kind: 'joiner', tokenId: 'j' });
  set.add(joiner);
  t.notOk(set.hasNode('n1'));
  joiner.principal = { kind: 'node', nodeId: 'n1' };
  t.notOk(set.hasNode('n1'), 'not before it is reindexed');
  set.reindex(joiner);
  t.same(set.ofNode('n1'), [joiner]);
  joiner.principal = { kind: 'admin', tokenId: 'x' }; // the principal it has when it goes does not matter
  set.delete(joiner);
  t.notOk(set.hasNode('n1'), 'unfiled under the node it was filed under');
  set.reindex(joiner);
  t.equal([...set].length, 0, 'reindexing a connection no longer in the set does not bring it back');
  t.notOk(set.hasNode('n1'));
});
