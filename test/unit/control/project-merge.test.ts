// docs/control-protocol.md: an upsert changes only what its document gives; `{}` and `[]` put a
// policy and the nodes back to their defaults.
import t from 'tap';
import { mergeProject } from '../../../src/control/projects.js';

const existing = mergeProject(
  { project_id: 'p1', name: 'One', token: 'a-project-token-of-16+', mounts: [{ node_id: 'n1' }], access_policy: { actions: { invoke: 'deny' } } },
  undefined,
);

t.test('fields a document leaves out keep their values, the token included', async (t) => {
  const again = mergeProject({ project_id: 'p1' }, existing);
  t.same(
    { name: again.name, mounts: again.mounts, access_policy: again.access_policy, token_sha256: again.token_sha256, incarnation: again.incarnation },
    {
      name: 'One',
      mounts: [{ node_id: 'n1' }],
      access_policy: { actions: { invoke: 'deny' } },
      token_sha256: existing.token_sha256,
      incarnation: existing.incarnation,
    },
  );
});

t.test('an empty policy and an empty mount list are given values: the defaults again', async (t) => {
  const reset = mergeProject({ project_id: 'p1', mounts: [], access_policy: {} }, existing);
  t.same(reset.access_policy, {}, 'every action at its default');
  t.same(reset.mounts, [], 'no node');
  t.equal(reset.name, 'One', 'the name, not given, stays');
});

t.test('a new project without a name is named by its id', async (t) => {
  t.equal(mergeProject({ project_id: 'p9' }, undefined).name, 'p9');
});
