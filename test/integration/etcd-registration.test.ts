// A server on etcd registers itself under an etcd lease (`servers/<id>`). When etcd is gone for
// longer than that lease, the registration is lost and the server registers again: one attempt at a
// time, with a pause between them, for as long as the outage lasts, and it is registered again once
// etcd is back. (Each failed attempt once started another retry loop: the loops doubled until the
// server spent its CPU on them and wrote thousands of log lines a second.)
import t from 'tap';
import { readFile } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { startControl } from '../helpers/control.js';
import { etcdStore, startEtcd } from '../helpers/etcd.js';
import { waitFor } from '../helpers/process.js';

const cluster = await startEtcd(t);
const store = await etcdStore(cluster);
const server = await startControl(t, { store, args: ['--server-ttl-ms', '1000'] });
const logLines = async (text: string): Promise<number> => (await readFile(server.logFile, 'utf8')).split('\n').filter((line) => line.includes(text)).length;
/** Seconds of CPU the server has used (user + system), from /proc. */
const cpuSeconds = async (): Promise<number> => {
  const fields = (await readFile(`/proc/${server.child.pid}/stat`, 'utf8')).split(') ')[1]?.split(' ') ?? [];
  return (Number(fields[11]) + Number(fields[12])) / 100;
};

await t.test('etcd gone past the registration lease: registering again is paced, and succeeds once etcd is back', async (tt) => {
  const [member] = cluster.members as [(typeof cluster.members)[0]];
  await member.kill9();
  await waitFor(async () => (await logLines('etcd registration lost')) > 0, { what: 'the server to notice its registration is lost', timeoutMs: 60_000 });
  const [failedBefore, lostBefore, cpuBefore] = [await logLines('etcd call failed'), await logLines('etcd registration lost'), await cpuSeconds()];
  const outageSeconds = 6;
  await sleep(outageSeconds * 1000);
  const failed = (await logLines('etcd call failed')) - failedBefore;
  const lost = (await logLines('etcd registration lost')) - lostBefore;
  const cpu = (await cpuSeconds()) - cpuBefore;
  tt.ok(failed <= 20 * outageSeconds, `${failed} failed etcd calls logged in ${outageSeconds} s of outage: paced attempts, not a storm`);
  tt.ok(lost <= 2, `the registration lost ${lost} more time(s) while registering again: an attempt that fails is not a new loss`);
  tt.ok(cpu < outageSeconds / 2, `${cpu.toFixed(2)} s of CPU in ${outageSeconds} s while etcd is gone`);

  member.start();
  await waitFor(async () => (await logLines('registered in etcd again')) > 0, { what: 'the server registered again', timeoutMs: 60_000 });
  await waitFor(async () => (await fetch(`${server.httpUrl}/readyz`)).status === 200, { what: '/readyz after etcd is back', timeoutMs: 60_000 });
  tt.pass('registered again and ready');
});
