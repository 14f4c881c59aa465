// The readiness check's read on every member at once (no etcd needed): a member that refuses the
// connection and one that accepts it and never answers (a hung member) are each named with what
// they did, and the check ends within its budget, not at a call deadline.
import t from 'tap';
import { createServer, type Socket } from 'node:net';
import { MemberReadiness } from '../../../../src/control/etcd/member-readiness.js';
import { freePort } from '../../../helpers/control.js';

t.test('no member answers: each named with its refusal or "no answer", within the budget', async (tt) => {
  const sockets: Socket[] = [];
  const silent = createServer((socket) => void sockets.push(socket));
  await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
  tt.teardown(() => {
    sockets.forEach((s) => s.destroy());
    silent.close();
  });
  const address = silent.address();
  const hung = `http://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}`;
  const port = await freePort();
  const refusing = `http://127.0.0.1:${port}`;
  const members = new MemberReadiness({ hosts: [hung, refusing] }, [hung, refusing]);
  tt.teardown(() => members.close());

  const started = Date.now();
  const problem = await members.problem('/x/', 1500);
  tt.match(
    problem,
    new RegExp(
      `^control store \\(etcd\\): no etcd member answered a read within 1500 ms \\(${hung}: (no answer|4 DEADLINE_EXCEEDED[^;]*); ${refusing}: connect ECONNREFUSED 127\\.0\\.0\\.1:${port}\\)$`,
    ),
  );
  tt.ok(Date.now() - started < 4_000, `ended in ${Date.now() - started} ms`);
});
