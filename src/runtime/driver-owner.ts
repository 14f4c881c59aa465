import { randomBytes } from 'node:crypto';
import { readdir, readFile } from 'node:fs/promises';
import { signalGroup } from './process-group.js';

/**
 * Every process the spawner starts carries `ACHERON_DRIVER_OWNER=<instance> <mount>` in its
 * environment, and so do the children it forks (unless one drops its environment). The spawner
 * carries it too, so a child it has forked but not yet exec'd is marked from its first instant.
 * That is how the drivers of a node are found when no process is left that knows their groups: the
 * spawner killed with the daemon still up, or both killed at once (then the next start on the same
 * mount finds them). Node has no PR_SET_PDEATHSIG, so the mark is what outlives its owner.
 */
export const DRIVER_OWNER_VAR = 'ACHERON_DRIVER_OWNER';

/** A fresh owner value for one daemon's life on `mount`. */
export function newDriverOwner(mount: string): string {
  return `${randomBytes(8).toString('hex')} ${mount}`;
}

/** Whether `owner` was made for `mount` by any daemon instance. */
export function ownerOnMount(owner: string, mount: string): boolean {
  return owner.slice(owner.indexOf(' ') + 1) === mount;
}

/** Passes over /proc before giving up on processes that keep forking marked children. */
const MAX_SWEEPS = 20;

/**
 * SIGKILLs every live process whose owner mark satisfies `matches`, and the process group of each
 * that leads one (a driver's group, so a child that dropped its environment goes too). Repeats
 * until a pass finds nothing, since a process may fork between the read and the kill. Returns how
 * many processes it killed. Processes whose environment we may not read are not ours to kill.
 */
export async function killOwnedProcesses(matches: (owner: string) => boolean, exceptPid = process.pid): Promise<number> {
  const killed = new Set<number>();
  for (let pass = 0; pass < MAX_SWEEPS; pass++) {
    const found = await ownedProcesses(matches, exceptPid);
    if (found.length === 0) break;
    for (const { pid, pgid } of found) {
      try {
        process.kill(pid, 'SIGKILL');
        killed.add(pid);
      } catch {
        // ESRCH: it ended meanwhile.
      }
      if (pgid === pid) signalGroup(pgid, 'SIGKILL');
    }
    // A killed process may still show for a moment before it turns zombie.
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  return killed.size;
}

async function ownedProcesses(matches: (owner: string) => boolean, exceptPid: number): Promise<Array<{ pid: number; pgid: number }>> {
  const found: Array<{ pid: number; pgid: number }> = [];
  const prefix = `${DRIVER_OWNER_VAR}=`;
  for (const entry of await readdir('/proc')) {
    const pid = Number(entry);
    if (!Number.isInteger(pid) || pid === exceptPid) continue;
    const environ = await readFile(`/proc/${entry}/environ`, 'utf8').catch(() => '');
    const owner = environ.split('\0').find((variable) => variable.startsWith(prefix));
    if (owner === undefined || !matches(owner.slice(prefix.length))) continue;
    const stat = await readFile(`/proc/${entry}/stat`, 'latin1').catch(() => '');
    // Fields after the command name: state, ppid, pgrp. A zombie is already dead.
    const [state, , pgrp] = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    if (state === undefined || state === 'Z' || state === 'X') continue;
    found.push({ pid, pgid: Number(pgrp) });
  }
  return found;
}
