import t from 'tap';
import { isInside } from '../../../src/node/paths.js';

t.test('isInside: the root and names below it, `..name` included; nothing above or beside it', async (t) => {
  for (const path of ['/exp', '/exp/a', '/exp/..hidden', '/exp/a/..b/c', '/exp/... ']) t.ok(isInside('/exp', path), `${path} is inside /exp`);
  for (const path of ['/', '/ex', '/exp2', '/exp2/a', '/etc/passwd']) t.notOk(isInside('/exp', path), `${path} is not inside /exp`);
});
