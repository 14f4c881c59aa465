import { constants, type Stats } from 'node:fs';
import { lstat, mkdir, open, readdir, readlink, realpath, rename, rmdir, stat, symlink, truncate, unlink, utimes, chmod } from 'node:fs/promises';
import { join, isAbsolute, resolve, dirname } from 'node:path';
import { directory } from '../vfs/directory.js';
import { isInside } from './paths.js';
import { FsError } from '../vfs/errors.js';
import type { Attr, Handle, VNode } from '../vfs/node.js';

export interface ExportSpec {
  name: string;
  path: string;
  readOnly: boolean;
}

const O_ACCMODE = 3;

/** Parses `--export name=path[:ro|:rw]`. */
export function parseExport(text: string): ExportSpec {
  const match = /^([A-Za-z0-9._-]{1,128})=(.+?)(?::(ro|rw))?$/.exec(text);
  if (!match || match[1] === '.' || match[1] === '..') throw new TypeError(`--export ${JSON.stringify(text)}: expected name=path[:ro|:rw] with an identifier name`);
  return { name: match[1] as string, path: resolve(match[2] as string), readOnly: match[3] === 'ro' };
}

/** Checks exports before mounting: they exist, are directories, and none contains the mount. */
export async function checkExports(exports: readonly ExportSpec[], mountPoint: string): Promise<ExportSpec[]> {
  const names = new Set<string>();
  const checked: ExportSpec[] = [];
  const mountReal = resolve(mountPoint);
  for (const spec of exports) {
    if (names.has(spec.name)) throw new TypeError(`--export ${spec.name}: duplicate export name`);
    names.add(spec.name);
    let real: string;
    try {
      real = await realpath(spec.path);
    } catch (error) {
      throw new TypeError(`--export ${spec.name}=${spec.path}: ${(error as Error).message}`);
    }
    if (!(await stat(real)).isDirectory()) throw new TypeError(`--export ${spec.name}=${spec.path}: not a directory`);
    if (isInside(real, mountReal)) throw new TypeError(`--export ${spec.name}=${spec.path}: contains the mount point ${mountPoint} (it would serve itself and deadlock)`);
    checked.push({ ...spec, path: real });
  }
  return checked;
}

/** The built-in fs provider: `fs/<name>/...` passes through to the exported directories. */
export function buildExportsDirectory(exports: readonly ExportSpec[]): VNode {
  const roots = new Map(exports.map((e) => [e.name, new ExportNode(e, e.path)]));
  return directory({ list: () => [...roots.keys()], get: (name) => roots.get(name) });
}

function toAttr(st: Stats): Attr {
  return { mode: st.mode, size: st.size, mtimeMs: st.mtimeMs, ctimeMs: st.ctimeMs, atimeMs: st.atimeMs, nlink: st.nlink, ino: st.ino };
}

/** A file or directory inside one export. Symlinks are followed inside the export; any that leads out is absent. */
class ExportNode implements VNode {
  readonly #export: ExportSpec;
  readonly #path: string;

  constructor(spec: ExportSpec, path: string) {
    this.#export = spec;
    this.#path = path;
  }

  async getattr(): Promise<Attr> {
    return toAttr(await stat(this.#path));
  }

  async lookup(name: string): Promise<VNode | undefined> {
    const path = join(this.#path, name);
    let st: Stats;
    try {
      st = await lstat(path);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw error;
    }
    if (st.isSymbolicLink()) {
      const target = await realpath(path).catch(() => undefined);
      if (target === undefined || !isInside(this.#export.path, target)) return undefined;
    }
    return new ExportNode(this.#export, path);
  }

  async readdir(): Promise<string[]> {
    const entries = await readdir(this.#path, { withFileTypes: true });
    // A link that leads out of the export is absent, so listings agree with lookup.
    const shown = await Promise.all(entries.map(async (entry) => (!entry.isSymbolicLink() || (await this.lookup(entry.name)) ? entry.name : undefined)));
    return shown.filter((name): name is string => name !== undefined).sort();
  }

  async open(flags: number): Promise<Handle> {
    if ((flags & O_ACCMODE) !== constants.O_RDONLY || flags & constants.O_TRUNC) this.#writable();
    return fileHandle(await open(this.#path, flags & ~(constants.O_CREAT | constants.O_EXCL)));
  }

  async truncate(size: number): Promise<void> {
    this.#writable();
    await truncate(this.#path, size);
  }

  async utimens(atimeMs: number, mtimeMs: number): Promise<void> {
    this.#writable();
    await utimes(this.#path, atimeMs / 1000, mtimeMs / 1000);
  }

  async chmod(mode: number): Promise<void> {
    this.#writable();
    await chmod(this.#path, mode & 0o7777);
  }

  async readlink(): Promise<string> {
    return readlink(this.#path);
  }

  async create(name: string, mode: number, flags: number): Promise<Handle> {
    this.#writable();
    return fileHandle(await open(join(this.#path, name), (flags & O_ACCMODE) | constants.O_CREAT | constants.O_EXCL, mode & 0o7777));
  }

  async mkdir(name: string, mode: number): Promise<void> {
    this.#writable();
    await mkdir(join(this.#path, name), mode & 0o7777);
  }

  async unlink(name: string): Promise<void> {
    this.#writable();
    await unlink(join(this.#path, name));
  }

  async rmdir(name: string): Promise<void> {
    this.#writable();
    await rmdir(join(this.#path, name));
  }

  async symlink(name: string, target: string): Promise<void> {
    this.#writable();
    const where = join(this.#path, name);
    if (isAbsolute(target) || !isInside(this.#export.path, resolve(dirname(where), target))) {
      throw new FsError('EPERM', `${name}: a link must stay inside the export ${this.#export.name}`);
    }
    await symlink(target, where);
  }

  async rename(name: string, newParent: VNode, newName: string): Promise<void> {
    this.#writable();
    if (!(newParent instanceof ExportNode) || newParent.#export !== this.#export) throw new FsError('EXDEV', `${name}: rename across exports`);
    await rename(join(this.#path, name), join(newParent.#path, newName));
  }

  #writable(): void {
    if (this.#export.readOnly) throw new FsError('EROFS', `export ${this.#export.name} is read-only`);
  }
}

function fileHandle(file: import('node:fs/promises').FileHandle): Handle {
  return {
    async read(offset, length) {
      const buffer = Buffer.alloc(length);
      const { bytesRead } = await file.read(buffer, 0, length, offset);
      return buffer.subarray(0, bytesRead);
    },
    async write(offset, data) {
      return (await file.write(data, 0, data.length, offset)).bytesWritten;
    },
    truncate: (size) => file.truncate(size),
    fsync: () => file.sync(),
    release: () => file.close(),
  };
}
