import { readFile } from 'node:fs/promises';
import type { LoadedService } from '../manifest/index.js';
import type { Problem } from '../protocol/schemas.js';

export interface UserIds {
  uid: number;
  gid: number;
}

/** Users by name from /etc/passwd (read at start-up and at each reload). */
export async function readPasswd(path = '/etc/passwd'): Promise<Map<string, UserIds>> {
  const users = new Map<string, UserIds>();
  const text = await readFile(path, 'utf8').catch(() => '');
  for (const line of text.split('\n')) {
    const [name, , uid, gid] = line.split(':');
    if (name && uid !== undefined && gid !== undefined) users.set(name, { uid: Number(uid), gid: Number(gid) });
  }
  return users;
}

/** `name` or `uid[:gid]`; undefined when unknown. */
export function lookupUser(users: Map<string, UserIds>, spec: string): UserIds | undefined {
  const numeric = /^(\d+)(?::(\d+))?$/.exec(spec);
  if (numeric) return { uid: Number(numeric[1]), gid: Number(numeric[2] ?? numeric[1]) };
  return users.get(spec);
}

/**
 * The node's --driver-user, checked at its start whatever its manifests: an unknown one stops it, as
 * its drivers without runtime.user and its terminals would have no one to run as. Before, it was
 * found only through a manifest (a wasm one, which runs as no user) or a terminal, and with neither
 * the node started.
 */
export async function checkDriverUser(driverUser: string | undefined, passwd?: string): Promise<void> {
  if (driverUser !== undefined && !lookupUser(await readPasswd(passwd), driverUser))
    throw new Error(`--driver-user ${JSON.stringify(driverUser)}: no such user in /etc/passwd (nor a uid[:gid])`);
}

/**
 * Splits loaded services into those whose `runtime.user` (or the node's --driver-user) exists and
 * problems naming the ones that do not: a driver must never run as someone unintended. A wasm
 * module runs inside the node as no user: --driver-user is not its.
 */
export function checkDriverUsers(
  loaded: LoadedService[],
  users: Map<string, UserIds>,
  driverUser: string | undefined,
): { ok: LoadedService[]; problems: Problem[] } {
  const ok: LoadedService[] = [];
  const problems: Problem[] = [];
  for (const service of loaded) {
    const { runtime } = service.descriptor;
    const wanted = runtime.user ?? (runtime.type === 'wasm' ? undefined : driverUser);
    if (wanted === undefined || lookupUser(users, wanted)) ok.push(service);
    else {
      const jsonPath = service.descriptor.runtime.user === undefined ? '/' : '/runtime/user';
      problems.push({
        file: service.source,
        json_path: jsonPath,
        rule: 'user',
        message: `${service.source}: ${jsonPath}: no such user ${JSON.stringify(wanted)}`,
      });
    }
  }
  return { ok, problems };
}
