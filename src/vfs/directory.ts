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
