import { constants, type Stats } from 'node:fs';
import { chmod, mkdir, open, readdir, readlink, rename, rmdir, stat, statfs, symlink, truncate, unlink, utimes, type FileHandle } from 'node:fs/promises';
import { basename, dirname, isAbsolute, join, relative, resolve, sep } from 'node:path';
import { directory } from '../vfs/directory.js';
import { isInside } from './paths.js';
import { FsError } from '../errors/errno.js';
import { makesRegularFile, S_IFLNK, S_IFMT, type Attr, type FsStats, type Handle, type VNode } from '../vfs/node.js';
import { opensToChange } from '../errors/open-flags.js';
import type { ExportSpec } from './export-spec.js';

/** The built-in fs provider: `fs/<name>/...` passes through to the exported directories. */
export function buildExportsDirectory(exports: readonly ExportSpec[]): VNode {
  const roots = new Map(exports.map((e) => [e.name, new ExportNode(e, e.path)]));
  return directory({ list: () => [...roots.keys()], get: (name) => roots.get(name) });
}

function toAttr(st: Stats): Attr {
  return { mode: st.mode, size: st.size, mtimeMs: st.mtimeMs, ctimeMs: st.ctimeMs, atimeMs: st.atimeMs, nlink: st.nlink, ino: st.ino, blocks: st.blocks };
}

/**
 * Linux's O_PATH (the same value on x86-64 and arm64; Node's fs.constants lacks it): a handle on a
 * name that opens nothing, so resolving a name has no side effect (no device opened, no FIFO waited on).
 */
const O_PATH = 0o10000000;
/**
 * The mode bits a file of an export may get through the mount: no setuid or setgid. The node makes
 * and changes files as root, so a mount user could otherwise leave a setuid-root program on the
 * node's disk. Dropped silently, as Linux drops S_ISGID for a caller outside the file's group.
 */
const KEPT_FILE_MODE = 0o1777;
/** Not passed on when reopening a checked object through /proc: O_CREAT, O_EXCL, O_NOFOLLOW make no sense
 * there; O_DIRECT would need aligned buffers, which a FUSE request's are not (EINVAL). */
const NOT_REOPENED = constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW | constants.O_DIRECT;

/**
 * A file, directory or link inside one export. A link is shown as a link (`rm -r` removes the link,
 * `find` and `tar` do not follow it), its target rewritten relative to the link's directory; one that
 * leads out of the export, or nowhere, is absent (ENOENT). The node runs as root, and the exported
 * directory may be changed meanwhile by anyone who can write to it, so no name is trusted between
 * two system calls: every operation resolves its path once, to an O_PATH handle, checks where that
 * object really is (the kernel's `/proc/self/fd/N`), and then works on that very object through its
 * /proc path, which is never looked up by name again. A link swapped in after the check is not
 * followed. `lookup` is lazy: the operation that follows answers ENOENT for a name that is missing or
 * leads out.
 */
class ExportNode implements VNode {
  readonly #export: ExportSpec;
  readonly #path: string;

  constructor(spec: ExportSpec, path: string) {
    this.#export = spec;
    this.#path = path;
  }

  async getattr(): Promise<Attr> {
    // O_NOFOLLOW: the last name itself (the kernel resolves links through readlink, never through us).
    const attr = await this.#checked(this.#path, async (object) => toAttr(await stat(object)), constants.O_NOFOLLOW);
    return (attr.mode & S_IFMT) === S_IFLNK ? { ...attr, size: Buffer.byteLength(await this.readlink()) } : attr;
  }

  /** The link's target as the mount shows it (`#shownTarget`); a link that leads out is absent. */
  async readlink(): Promise<string> {
    if (this.#path === this.#export.path) throw new FsError('EINVAL', `${this.#export.name}: not a symbolic link`);
    const name = basename(this.#path);
    // Read in its checked directory: readlink never follows the last name.
    const [dir, target] = await this.#checked(dirname(this.#path), async (object, real) => [real, await readlink(`${object}/${name}`)], constants.O_DIRECTORY);
    const shown = this.#shownTarget(dir, target);
    if (shown === undefined)
      throw new FsError('ENOENT', `${this.#export.name}/${relative(this.#export.path, this.#path)}: a link that leads out of the export`);
    return shown;
  }

  /**
   * What a link in `dir` (its real path) holding `target` shows, or undefined when it leads out of
   * the export: a relative target as written when, walked from `dir`, it never climbs above the
   * export (else its shortest form), an absolute one inside the export relative to `dir` (the node's
   * paths mean nothing where the mount is). Nothing is followed: a target may dangle, and the kernel
   * follows what it is shown one name at a time, through this export.
   */
  #shownTarget(dir: string, target: string): string | undefined {
    const lexical = resolve(dir, target);
    if (!isInside(this.#export.path, lexical)) return undefined;
    return !isAbsolute(target) && neverClimbsOut(relative(this.#export.path, dir), target) ? target : relative(dir, lexical) || '.';
  }

  async lookup(name: string): Promise<VNode> {
    return new ExportNode(this.#export, join(this.#path, name));
  }

  async readdir(): Promise<string[]> {
    const shown = await this.#inThisDirectory(async (dir, real) => {
      const read = await readdir(dir, { withFileTypes: true, encoding: 'buffer' });
      // A name that is not UTF-8 could not be asked for again (the mount passes names as UTF-8 text): not listed.
      const entries = read.map((entry) => ({ entry, name: entry.name.toString('utf8') })).filter(({ entry, name }) => Buffer.from(name).equals(entry.name));
      // A link that leads out of the export is absent, so listings agree with getattr.
      const leadsIn = (name: string) =>
        readlink(`${dir}/${name}`).then(
          (target) => this.#shownTarget(real, target) !== undefined,
          () => false,
        );
      return Promise.all(entries.map(async ({ entry, name }) => (!entry.isSymbolicLink() || (await leadsIn(name)) ? name : undefined)));
    });
    return shown.filter((name): name is string => name !== undefined).sort();
  }

  /** The exported directory's file system (`df`, and file managers that check the space before a copy). */
  async statfs(): Promise<FsStats> {
    const s = await this.#checked(this.#path, (object) => statfs(object));
    return { bsize: s.bsize, frsize: s.bsize, blocks: s.blocks, bfree: s.bfree, bavail: s.bavail, files: s.files, ffree: s.ffree };
  }

  async open(flags: number): Promise<Handle> {
    if (opensToChange(flags)) this.#writable();
    return fileHandle(await this.#checked(this.#path, (object) => open(object, flags & ~NOT_REOPENED)));
  }

  async truncate(size: number): Promise<void> {
    this.#writable();
    await this.#checked(this.#path, (object) => truncate(object, size));
  }

  /** O_NOFOLLOW: the kernel asks for a link's own times only (`touch -h`, `cp -a` of a link); the target is not touched. */
  async utimens(atimeMs: number, mtimeMs: number): Promise<void> {
    this.#writable();
    await this.#checked(this.#path, (object) => utimes(object, atimeMs / 1000, mtimeMs / 1000), constants.O_NOFOLLOW);
  }

  async chmod(mode: number): Promise<void> {
    this.#writable();
    await this.#checked(this.#path, async (object) => chmod(object, mode & ((await stat(object)).isDirectory() ? 0o7777 : KEPT_FILE_MODE)));
  }

  /** The owner shown is kept: nothing to do but be there, and writable. O_NOFOLLOW: a link's own (`chown -h`, `tar x`, `cp -a`), dangling or not. */
  async chown(): Promise<void> {
    this.#writable();
    await this.#checked(this.#path, async () => undefined, constants.O_NOFOLLOW);
  }

  /** fsyncdir: makes creates, renames and removes in this directory durable. */
  async fsync(datasync: boolean): Promise<void> {
    const dir = await this.#inThisDirectory((object) => open(object, constants.O_RDONLY | constants.O_DIRECTORY));
    try {
      await (datasync ? dir.datasync() : dir.sync());
    } finally {
      await dir.close();
    }
  }

  async mknod(name: string, mode: number): Promise<void> {
    this.#writable();
    if (!makesRegularFile(mode)) throw new FsError('EPERM', `${name}: only regular files can be made here (no devices, FIFOs or sockets)`);
    // O_EXCL: a name that appeared meanwhile, a link included, is EEXIST, never followed.
    const file = await this.#inThisDirectory((dir) => open(`${dir}/${name}`, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL, mode & KEPT_FILE_MODE));
    await file.close();
  }

  async mkdir(name: string, mode: number): Promise<void> {
    this.#writable();
    await this.#inThisDirectory((dir) => mkdir(`${dir}/${name}`, mode & 0o7777));
  }

  async unlink(name: string): Promise<void> {
    this.#writable();
    await this.#inThisDirectory((dir) => unlink(`${dir}/${name}`));
  }

  async rmdir(name: string): Promise<void> {
    this.#writable();
    await this.#inThisDirectory((dir) => rmdir(`${dir}/${name}`));
  }

  /**
   * A link as given, if it is relative and stays inside the export as written: it is resolved on the
   * node, where an absolute target would name the node's own files (and be absent from the mount).
   */
  async symlink(name: string, target: string): Promise<void> {
    this.#writable();
    if (isAbsolute(target) || !neverClimbsOut(relative(this.#export.path, this.#path), target))
      throw new FsError('EPERM', `${name} -> ${target}: a link made through the mount must be relative and stay inside the export ${this.#export.name}`);
    await this.#inThisDirectory((dir) => symlink(target, `${dir}/${name}`));
  }

  /** Hard links are refused by the dispatcher; a read-only export refuses them as every change: EROFS. */
  async link(): Promise<void> {
    this.#writable();
  }

  async rename(name: string, newParent: VNode, newName: string): Promise<void> {
    this.#writable();
    if (!(newParent instanceof ExportNode) || newParent.#export !== this.#export) throw new FsError('EXDEV', `${name}: rename across exports`);
    await this.#inThisDirectory((from) => newParent.#inThisDirectory((to) => rename(`${from}/${name}`, `${to}/${newName}`)));
  }

  #writable(): void {
    if (this.#export.readOnly) throw new FsError('EROFS', `export ${this.#export.name} is read-only`);
  }

  /** Runs `use` on this directory: names below it are then looked up in the checked directory itself. */
  #inThisDirectory<T>(use: (dir: string, real: string) => Promise<T>): Promise<T> {
    return this.#checked(this.#path, use, constants.O_DIRECTORY);
  }

  /**
   * Resolves `path` once (following links) to an O_PATH handle, checks that the object lies inside
   * the export, and runs `use` with the handle's /proc path (the object itself: a name swapped
   * meanwhile is not looked at again) and the object's real path.
   */
  async #checked<T>(path: string, use: (object: string, real: string) => Promise<T>, flags = 0): Promise<T> {
    const handle = await open(path, O_PATH | flags);
    try {
      const object = `/proc/self/fd/${handle.fd}`;
      const real = await readlink(object);
      if (!isInside(this.#export.path, real)) {
        throw new FsError('ENOENT', `${relative(this.#export.path, path)}: leads out of the export ${this.#export.name}`);
      }
      return await use(object, real);
    } finally {
      await handle.close();
    }
  }
}

/** Whether `target`, walked name by name from `from` (a directory's path relative to the export), never climbs above the export. */
function neverClimbsOut(from: string, target: string): boolean {
  let depth = from === '' ? 0 : from.split(sep).length;
  for (const name of target.split('/')) {
    if (name === '..') depth--;
    else if (name !== '' && name !== '.') depth++;
    if (depth < 0) return false;
  }
  return true;
}

function fileHandle(file: FileHandle): Handle {
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
    fsync: (datasync) => (datasync ? file.datasync() : file.sync()),
    release: () => file.close(),
  };
}
