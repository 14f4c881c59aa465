import { S_IFDIR, type Attr, type VNode } from './node.js';

export interface DirectorySource {
  /** Child names, computed from live state on every call. */
  list(): string[] | Promise<string[]>;
  get(name: string): VNode | undefined | Promise<VNode | undefined>;
  mtimeMs?: () => number;
}

/** A read-only directory whose children come from a source: a fixed table or live state. */
export function directory(source: DirectorySource, mode = 0o755): VNode {
  const bornMs = Date.now();
  return {
    async getattr(): Promise<Attr> {
      const mtimeMs = source.mtimeMs?.() ?? bornMs;
      return { mode: S_IFDIR | mode, size: 4096, mtimeMs, ctimeMs: mtimeMs, nlink: 2 };
    },
    async lookup(name) {
      return source.get(name);
    },
    async readdir() {
      return source.list();
    },
  };
}

/** A directory over a fixed list of entries, in the given order. */
export function tableDirectory(entries: ReadonlyArray<readonly [string, VNode]>, mtimeMs?: () => number): VNode {
  const byName = new Map(entries);
  const names = entries.map(([name]) => name);
  // A table is written in code: a duplicate is a bug in that code, not a filesystem condition.
  if (byName.size !== entries.length) throw new TypeError(`tableDirectory: duplicate entry name among ${names.join(', ')}`);
  return directory({ list: () => names, get: (name) => byName.get(name), ...(mtimeMs ? { mtimeMs } : {}) });
}

/**
 * Table entries from `a/b` paths, keeping the table's order: each first segment that has children
 * becomes a table directory of them (the service file table has `control/...`).
 */
export function tableFromPaths(entries: ReadonlyArray<readonly [string, VNode]>, mtimeMs: () => number): Array<readonly [string, VNode]> {
  const top: Array<[string, VNode | Array<readonly [string, VNode]>]> = [];
  for (const [path, node] of entries) {
    const [head, ...rest] = path.split('/') as [string, ...string[]];
    if (rest.length === 0) {
      top.push([head, node]);
      continue;
    }
    let group = top.find(([name, value]) => name === head && Array.isArray(value))?.[1] as Array<readonly [string, VNode]> | undefined;
    if (!group) {
      group = [];
      top.push([head, group]);
    }
    group.push([rest.join('/'), node]);
  }
  return top.map(([name, value]) => [name, Array.isArray(value) ? tableDirectory(tableFromPaths(value, mtimeMs), mtimeMs) : value] as const);
}
