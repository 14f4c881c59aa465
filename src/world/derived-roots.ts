import type { ServiceDescriptor } from '../protocol/types.gen.js';
import { directory } from '../vfs/directory.js';
import type { VNode } from '../vfs/node.js';

/** A service shown at one of its `mounts[].mount_path`, as path segments below `nodes/<node_id>/`. */
export interface DerivedRoot {
  segments: string[];
  serviceId: string;
}

/**
 * The names every node directory has (or may have: `fs` with the exports), and `services`: a
 * derived root never shadows them, nor goes inside them.
 */
export const NODE_DIRECTORY_NAMES: ReadonlySet<string> = new Set(['NODE.json', 'STATUS.json', 'CAPS.json', 'README.md', 'services', 'fs']);

/** Longer than this, a name is not one Linux can look up (NAME_MAX). */
const NAME_MAX_BYTES = 255;

/**
 * Derived mount roots (SPEC §2, §8, §9): each mount of these services whose `mount_path` lies under
 * `/nodes/<nodeId>/` but outside the node directory's own names (`services/`, `fs/`, the upper-case
 * files) is a root at that path. Paths of another node, with `.`, `..` or NUL segments, or too long a
 * name are ignored. Conflicts are settled the same way whoever looks: shorter paths first, then by
 * path and service id; a path equal to or inside a root already taken is ignored. `services` should
 * be the ones the session may see, so a hidden service never takes a path from a visible one.
 */
export function derivedRoots(nodeId: string, services: readonly ServiceDescriptor[]): DerivedRoot[] {
  const prefix = `/nodes/${nodeId}/`;
  const candidates: DerivedRoot[] = [];
  for (const service of services) {
    for (const { mount_path: mountPath } of service.mounts) {
      if (!mountPath.startsWith(prefix)) continue;
      const segments = mountPath.slice(prefix.length).split('/').filter(Boolean);
      const [first] = segments;
      if (first === undefined || NODE_DIRECTORY_NAMES.has(first)) continue;
      if (segments.some((s) => s === '.' || s === '..' || s.includes('\0') || Buffer.byteLength(s) > NAME_MAX_BYTES)) continue;
      candidates.push({ segments, serviceId: service.service_id });
    }
  }
  const key = (root: DerivedRoot): string => root.segments.join('/');
  candidates.sort((a, b) => a.segments.length - b.segments.length || (key(a) < key(b) ? -1 : key(a) > key(b) ? 1 : a.serviceId < b.serviceId ? -1 : 1));
  const taken: DerivedRoot[] = [];
  for (const candidate of candidates) {
    if (!taken.some((root) => root.segments.every((s, i) => candidate.segments[i] === s))) taken.push(candidate);
  }
  return taken;
}

/** What a derived path leads to: the service's directory, or a directory on the way to roots deeper down. */
export interface DerivedTree {
  roots(): DerivedRoot[];
  serviceDirectory(serviceId: string): VNode;
  mtimeMs(): number;
}

/**
 * A node directory: its fixed entries, then the first segments of its derived roots (fixed names
 * win; derivedRoots never yields them anyway).
 */
export function withDerivedRoots(entries: ReadonlyArray<readonly [string, VNode]>, tree: DerivedTree): VNode {
  const fixed = new Map(entries);
  return directory({
    list: () => [...fixed.keys(), ...derivedNames(tree.roots(), [])],
    get: (name) => fixed.get(name) ?? derivedChild(tree, [], name),
    mtimeMs: () => tree.mtimeMs(),
  });
}

/** The names below `parent` (segments) that lead to derived roots, sorted. */
export function derivedNames(roots: readonly DerivedRoot[], parent: readonly string[]): string[] {
  const names = new Set<string>();
  for (const root of roots) {
    if (root.segments.length > parent.length && parent.every((s, i) => root.segments[i] === s)) names.add(root.segments[parent.length] as string);
  }
  return [...names].sort();
}

/**
 * The child `name` of `parent` in the derived part of a node directory: the service directory when
 * a root ends there, a directory when roots lie deeper, else undefined. Computed from the catalog
 * at every lookup, like every data-driven directory of WorldFS.
 */
export function derivedChild(tree: DerivedTree, parent: readonly string[], name: string): VNode | undefined {
  const path = [...parent, name];
  const roots = tree.roots();
  const root = roots.find((r) => r.segments.length === path.length && path.every((s, i) => r.segments[i] === s));
  if (root) return tree.serviceDirectory(root.serviceId);
  if (!derivedNames(roots, parent).includes(name)) return undefined;
  return directory({
    list: () => derivedNames(tree.roots(), path),
    get: (child) => derivedChild(tree, path, child),
    mtimeMs: () => tree.mtimeMs(),
  });
}
