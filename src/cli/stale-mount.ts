import { mountState } from '../fuse/mount-table.js';

/** What `acheron invoke` says of a mount whose daemon is gone (docs/errors.md, ENOTCONN). */
export function staleMountText(mount: string, restart: string): string {
  return `the daemon that served ${mount} is gone (a stale mount): ${restart}, or fusermount -uz ${mount}`;
}

/**
 * That, when the mount's root itself answers ENOTCONN (its daemon is gone); undefined while it is
 * served (a live WorldFS answers ENOTCONN below its root only, while it has lost its control server).
 */
export async function staleMountMeaning(mount: string, restart: string): Promise<string | undefined> {
  return (await mountState(mount)) === 'stale' ? staleMountText(mount, restart) : undefined;
}
