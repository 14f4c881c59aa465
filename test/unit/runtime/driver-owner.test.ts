// The owner mark every driver carries, and the sweep that kills what a dead daemon or spawner left
// behind: every marked process of that owner, the groups they lead, nothing of another owner.
import t from 'tap';
import { spawn } from 'node:child_process';
import { DRIVER_OWNER_VAR, killOwnedProcesses, newDriverOwner, ownerOnMount } from '../../../src/runtime/driver-owner.js';
import { alive, waitFor } from '../../helpers/process.js';

/** A driver-like process: its own group, a child in it, and one child that dropped its environment. */
function marked(owner: string): number {
  const child = spawn('/bin/sh', ['-c', 'sleep 60 & env -i /bin/sleep 60 & wait'], {
    env: { PATH: '/usr/bin:/bin', [DRIVER_OWNER_VAR]: owner },
    detached: true,
    stdio: 'ignore',
  });
  t.teardown(() => {
    try {
      process.kill(-(child.pid as number), 'SIGKILL');
    } catch {
      // gone, as it should be
    }
  });
  return child.pid as number;
}

async function group(pgid: number): Promise<number[]> {
  const { readdir, readFile } = await import('node:fs/promises');
  const members: number[] = [];
  for (const entry of await readdir('/proc')) {
    const stat = await readFile(`/proc/${entry}/stat`, 'utf8').catch(() => '');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    if (/^\d+$/.test(entry) && Number(fields[2]) === pgid && fields[0] !== 'Z') members.push(Number(entry));
  }
  return members;
}

t.test("an owner names its mount; the sweep kills that owner's processes and their groups only", async (t) => {
  const mine = newDriverOwner('/mnt/a b');
  const earlier = newDriverOwner('/mnt/a b');
  const other = newDriverOwner('/mnt/other');
  t.not(mine, earlier, 'each daemon life has its own owner');
  t.ok(ownerOnMount(mine, '/mnt/a b') && ownerOnMount(earlier, '/mnt/a b'), 'both are of that mount');
  t.notOk(ownerOnMount(other, '/mnt/a b'));
  const leaders = [marked(mine), marked(earlier), marked(other)];
  await waitFor(async () => (await Promise.all(leaders.map(group))).every((members) => members.length === 3), {
    what: 'each group to have its three processes',
  });

  const killed = await killOwnedProcesses((owner) => owner === mine);
  t.equal(killed, 2, 'the shell and its marked child');
  await waitFor(async () => (await group(leaders[0] as number)).length === 0, { what: 'the whole group, the unmarked child too' });
  t.equal((await group(leaders[1] as number)).length, 3, "an earlier daemon's drivers are not this one's");

  t.equal(await killOwnedProcesses((owner) => ownerOnMount(owner, '/mnt/a b')), 2, "a start on the mount sweeps any earlier daemon's");
  await waitFor(async () => (await group(leaders[1] as number)).length === 0, { what: "the earlier daemon's group" });
  t.ok(await alive(leaders[2] as number), "another mount's drivers live on");
  t.equal((await group(leaders[2] as number)).length, 3);
});
