// The etcd test helper itself: a 3-member cluster on loopback comes up healthy with one leader; a
// leader killed with SIGKILL is replaced by a survivor; the killed member rejoins on restart.
import t from 'tap';
import { startEtcd } from '../helpers/etcd.js';

t.test('a 3-member cluster: healthy, one leader, a killed leader is replaced', async (t) => {
  const cluster = await startEtcd(t, { members: 3 });
  t.equal(cluster.endpoints.length, 3, 'three client endpoints');
  t.equal(new Set(cluster.endpoints).size, 3, 'on distinct ports');
  const leader = await cluster.leader();
  t.ok(cluster.members.includes(leader), `a leader: ${leader.name}`);

  await leader.kill9();
  t.notOk(leader.isRunning, 'the old leader is gone');
  const next = await cluster.leader();
  t.not(next.name, leader.name, `a survivor leads now: ${next.name}`);

  leader.start();
  await cluster.waitHealthy();
  t.ok(leader.isRunning, 'the killed member runs again and the cluster is healthy');
  await cluster.stopAll();
  t.notOk(
    cluster.members.some((m) => m.isRunning),
    'stopAll leaves nothing running',
  );
});
