// A join spends its single-use token before the catalog takes the node; when the catalog then fails
// (a full disk, etcd gone), nothing joined, and the token is given back: the node may try again
// with it instead of needing a new one from an admin.
import t from 'tap';
import type { CatalogStore } from '../../../src/control/catalog-store.js';
import { FileTokenStore } from '../../../src/control/file-token-store.js';
import { OPS, type OpContext } from '../../../src/control/ops.js';
import { noSpace } from '../../helpers/file-faults.js';
import { tempDir } from '../../helpers/node.js';

t.test('a join the catalog refuses gives its token back; one that goes through spends it', async (t) => {
  const tokens = await FileTokenStore.open(await tempDir(t));
  t.teardown(() => tokens.close());
  const { token } = await tokens.createJoin(60_000);
  let failing = true;
  const catalog = {
    join: async () => {
      if (failing) throw noSpace();
      return { node_id: 'n1', node_secret: 'secret', lease_ttl_ms: 60_000 };
    },
  } as unknown as CatalogStore;
  const context = {
    principal: { kind: 'joiner', tokenId: 'j' },
    tokens,
    catalog,
    becomeNode: () => undefined,
    dropNode: () => undefined,
  } as unknown as OpContext;
  const join = (): Promise<unknown> => OPS['control.node_join']!.handle(context, { join_token: token, node_id: 'n1' } as never);
  await t.rejects(join(), { code: 'ENOSPC' }, 'the catalog failed');
  t.same(await tokens.authenticate(token), { kind: 'joiner', tokenId: (await tokens.list()).find((e) => e.role === 'join')?.id }, 'the token is usable again');
  failing = false;
  t.same(await join(), { node_id: 'n1', node_secret: 'secret', lease_ttl_ms: 60_000 }, 'the next try joins');
  t.equal(await tokens.authenticate(token), undefined, 'and spends the token');
  await t.rejects(join(), { code: 'unauthorized' }, 'which no second join can use');
});
