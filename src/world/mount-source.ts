import { join } from 'node:path';
import { findMount, mountPointPath, type MountEntry } from '../fuse/mount-table.js';

/**
 * The source a WorldFS mount shows in the mount table (`mount`, `df`, /proc/self/mountinfo), one per
 * tree it serves: a client given only the mount point (`acheron invoke --node N --mount DIR`) learns
 * from it where the node directories are, which the tree's shape cannot tell (a subtree mount of a
 * node named `nodes`, or of no node at all, looks like a whole one, or like an empty directory).
 */
export const WORLD_SOURCE = { whole: 'acheron-world', nodes: 'acheron-world-nodes' } as const;

/** The mount-table source of a WorldFS mount of `subtree`. */
export function worldSource(subtree: 'nodes' | undefined): string {
  return subtree === 'nodes' ? WORLD_SOURCE.nodes : WORLD_SOURCE.whole;
}

/** What the mount table says is mounted on `mount` (undefined: nothing, or no table to read). */
export async function mountedOn(mount: string): Promise<MountEntry | undefined> {
  return findMount(await mountPointPath(mount)).catch(() => undefined);
}

/**
 * The directory of a WorldFS mount's node directories: the mount itself for `--subtree nodes`, else
 * `<mount>/nodes` (also when no WorldFS is mounted there: the caller's ENOENT then says so).
 */
export async function worldNodesDir(mount: string): Promise<string> {
  const entry = await mountedOn(mount);
  return entry?.source === WORLD_SOURCE.nodes && entry.fstype.startsWith('fuse') ? mount : join(mount, 'nodes');
}
