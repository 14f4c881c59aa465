// What ps shows of a detached WorldFS daemon (worldShown): its mount and servers, never a credential.
import t from 'tap';
import { worldShown } from '../../../src/cli/world-command.js';

t.test('the mount, the servers, project and subtree', async (t) => {
  t.same(worldShown('/mnt/w', ['ws://a:1', 'wss://b:2/x'], { project: 'p1', subtree: 'nodes' }), [
    '--mount',
    '/mnt/w',
    '--control-url',
    'ws://a:1,wss://b:2/x',
    '--project',
    'p1',
    '--subtree',
    'nodes',
  ]);
  t.same(worldShown('/m', ['ws://a:1'], {}), ['--mount', '/m', '--control-url', 'ws://a:1'], 'no project, no subtree: not shown');
});

t.test('a URL shows without user info or query, where a credential could be', async (t) => {
  t.same(worldShown('/m', ['ws://u:secret@a:1/p?token=secret#x'], {}), ['--mount', '/m', '--control-url', 'ws://a:1/p']);
});
