/**
 * src/vfs: the synthetic file tree, pure. Owns the `VNode`/`Handle` interfaces, the `Dispatcher`
 * (path walk, permission checks, SPEC §3's errno defaults) and the blocks trees are built from
 * (directories, static and snapshot files, ctl files, `commitFile` with the commit rule). The node
 * tree and WorldFS are two projections built from these blocks.
 *
 * Must not import: fuse/, node/, control/, world/, runtime/, manifest/, protocol/, store/ or cli/
 * (no I/O of its own; errors come from errors/).
 */
import { FsError } from '../errors/errno.js';
import { isDirectoryMode, makesRegularFile, type Attr, type FsStats, type Handle, type VNode } from './node.js';
import { O_RDONLY, opensForReading, opensForWriting } from '../errors/open-flags.js';

const MAX_NAME_BYTES = 255;
/** statfs of the synthetic tree: no blocks, no inodes (as /proc; `df` leaves such a mount out). */
const NO_FILE_SYSTEM: FsStats = { bsize: 4096, frsize: 4096, blocks: 0, bfree: 0, bavail: 0, files: 0, ffree: 0 };

/**
 * Walks paths and applies the checks and defaults every node shares (go-fuse's bridge, lib9p's srv
 * loop): the SPEC §3 errno table lives here once, so nodes implement only what they support.
 */
/** EACCES for an open its file's mode bits do not allow: the same words on the node's mount and in WorldFS. */
export function openModeRefused(path: string, mode: number): FsError {
  return new FsError('EACCES', `${path}: open mode not allowed (file mode ${(mode & 0o777).toString(8)})`);
}

export class Dispatcher {
  readonly root: VNode;
  readonly #justMade = new JustMade();

  constructor(root: VNode) {
    this.root = root;
  }

  async resolve(path: string): Promise<VNode> {
    let node = this.root;
    for (const name of splitPath(path)) {
      if (!node.lookup) throw new FsError('ENOTDIR', `${path}: not a directory`);
      const child = await node.lookup(name);
      if (!child) throw new FsError('ENOENT', `${path}: no such file or directory`);
      node = child;
    }
    return node;
  }

  async getattr(path: string): Promise<Attr> {
    return (await this.resolve(path)).getattr();
  }

  async readdir(path: string): Promise<string[]> {
    const node = await this.resolve(path);
    if (!node.readdir) throw new FsError('ENOTDIR', `${path}: not a directory`);
    return node.readdir();
  }

  async open(path: string, flags: number): Promise<Handle> {
    const node = await this.resolve(path);
    if (node.checksOpenItself && node.open) return node.open(flags);
    const justMade = this.#justMade.take(path);
    const { mode } = await node.getattr();
    const wantsWrite = opensForWriting(flags);
    const wantsRead = opensForReading(flags);
    if (isDirectoryMode(mode)) {
      if (wantsWrite) throw new FsError('EISDIR', `${path}: is a directory`);
      return {};
    }
    // open(O_CREAT) of a read-only mode may still write what it creates (cp of a 0444 file, tar x).
    if (!justMade && ((wantsRead && (mode & 0o444) === 0) || (wantsWrite && (mode & 0o222) === 0))) {
      throw openModeRefused(path, mode);
    }
    if (!node.open) throw new FsError('EACCES', `${path}: cannot be opened`);
    return node.open(flags);
  }

  /**
   * A read-only open and the attributes of what it reads, for a whole-file read (the WorldFS
   * relay's read_file): one render when the handle can tell them (snapshot files), and the same
   * refusals as `open` (EISDIR, EACCES without a read bit).
   */
  async openToRead(path: string): Promise<{ handle: Handle; attr: Attr }> {
    const node = await this.resolve(path);
    // Opening for reading has no effect on any of our files, so the open comes first and its snapshot answers.
    const handle = node.open ? await node.open(O_RDONLY) : undefined;
    const refuse = async (error: FsError): Promise<never> => {
      await handle?.release?.().catch(() => undefined);
      throw error;
    };
    const attr = handle?.getattr ? await handle.getattr() : await node.getattr().catch(refuse);
    if (isDirectoryMode(attr.mode)) return refuse(new FsError('EISDIR', `${path}: is a directory`));
    if ((attr.mode & 0o444) === 0 || !handle?.read) return refuse(openModeRefused(path, attr.mode));
    return { handle, attr };
  }

  async truncate(path: string, size: number): Promise<void> {
    const node = await this.resolve(path);
    if (node.truncate) return node.truncate(size);
    const { mode } = await node.getattr();
    throw new FsError(isDirectoryMode(mode) ? 'EISDIR' : 'EACCES', `${path}: cannot be truncated`);
  }

  async utimens(path: string, atimeMs: number, mtimeMs: number): Promise<void> {
    const node = await this.resolve(path);
    // Synthetic files keep their own times; accepting the call lets `touch` and `cp -p` work.
    if (node.utimens) await node.utimens(atimeMs, mtimeMs);
  }

  /** fsync(2) of a directory: the FUSE layer passes no handle (directories are not opened), so by path. */
  async fsyncdir(path: string, datasync: boolean): Promise<void> {
    const node = await this.resolve(path);
    if (node.fsync) await node.fsync(datasync);
  }

  /** statfs(2): the numbers of the file system under `path` (an export's), or none for synthetic files. */
  async statfs(path: string): Promise<FsStats> {
    const node = await this.resolve(path);
    return node.statfs ? node.statfs() : NO_FILE_SYSTEM;
  }

  async chmod(path: string, mode: number): Promise<void> {
    const node = await this.resolve(path);
    if (!node.chmod) throw new FsError('EPERM', `${path}: synthetic files keep their mode`);
    return node.chmod(mode);
  }

  /**
   * `keepsOwner`: the chown asks for the owner and group the mount already shows (or leaves them).
   * Nothing else is done through a mount: fuse-native does not say who asks, so a real change would
   * be the daemon's (root's) to make for anyone.
   */
  async chown(path: string, keepsOwner: boolean): Promise<void> {
    const node = await this.resolve(path);
    if (!node.chown) throw new FsError('EPERM', `${path}: synthetic files keep their owner`);
    // First, so a read-only export answers EROFS to any chown, as to every change (it changes nothing).
    await node.chown();
    if (!keepsOwner)
      throw new FsError('EPERM', `${path}: the owner is not changed through the mount (change it on the node); a chown to the owner shown succeeds`);
  }

  async readlink(path: string): Promise<string> {
    const node = await this.resolve(path);
    if (!node.readlink) throw new FsError('EINVAL', `${path}: not a symbolic link`);
    return node.readlink();
  }

  /**
   * mknod(2), which is also how the kernel creates a file here: a FUSE tree without `create` gets
   * mknod and then an open with the caller's own flags. Only regular files; devices, FIFOs and
   * sockets are refused: EPERM in the synthetic tree (SPEC §3), by an export after the refusal of
   * every change it may give (EROFS).
   */
  async mknod(path: string, mode: number): Promise<void> {
    const [parent, name] = await this.#parentOf(path, true);
    if (!parent.mknod)
      throw makesRegularFile(mode)
        ? new FsError('EACCES', `${path}: files cannot be created here`)
        : new FsError('EPERM', `${path}: only regular files can be made here (no devices, FIFOs or sockets)`);
    await parent.mknod(name, mode);
    this.#justMade.add(path);
  }

  async mkdir(path: string, mode: number): Promise<void> {
    const [parent, name] = await this.#parentOf(path, true);
    if (!parent.mkdir) throw new FsError('EPERM', `${path}: directories cannot be created here`);
    return parent.mkdir(name, mode);
  }

  async unlink(path: string): Promise<void> {
    const [parent, name] = await this.#existingChild(path);
    if (!parent.unlink) throw new FsError('EPERM', `${path}: cannot be removed`);
    return parent.unlink(name);
  }

  async rmdir(path: string): Promise<void> {
    const [parent, name] = await this.#existingChild(path);
    if (!parent.rmdir) throw new FsError('EPERM', `${path}: cannot be removed`);
    return parent.rmdir(name);
  }

  async symlink(target: string, path: string): Promise<void> {
    const [parent, name] = await this.#parentOf(path, true);
    if (!parent.symlink) throw new FsError('EPERM', `${path}: links cannot be created here`);
    return parent.symlink(name, target);
  }

  async rename(from: string, to: string): Promise<void> {
    const [parent, name] = await this.#existingChild(from);
    const [newParent, newName] = await this.#parentOf(to, true);
    if (!parent.rename) throw new FsError('EPERM', `${from}: cannot be renamed`);
    return parent.rename(name, newParent, newName);
  }

  /** Hard links: never made; where a directory refuses every change (a read-only export) it says so (EROFS). */
  async link(path: string): Promise<never> {
    const [parent, name] = await this.#parentOf(path, true);
    await parent.link?.(name);
    throw new FsError('EPERM', `${path}: hard links not supported`);
  }

  /** `isNew`: a name being made (create, mkdir, symlink, rename's target). */
  async #parentOf(path: string, isNew = false): Promise<[VNode, string]> {
    const names = splitPath(path);
    const name = names.pop();
    if (name === undefined) throw new FsError('EEXIST', '/: is the root');
    if (Buffer.byteLength(name) > MAX_NAME_BYTES) throw new FsError('ENAMETOOLONG', `${path}: name too long`);
    // fuse-native hands names over as UTF-8 text: bytes that are not UTF-8 arrive as U+FFFD, and a
    // file made under that name would be another name, shared by every such name (a second one
    // would overwrite the first).
    if (isNew && name.includes('\uFFFD')) throw new FsError('EILSEQ', `${path}: names must be UTF-8 here`);
    const parent = await this.resolve('/' + names.join('/'));
    if (!parent.lookup) throw new FsError('ENOTDIR', `${path}: parent is not a directory`);
    return [parent, name];
  }

  async #existingChild(path: string): Promise<[VNode, string]> {
    const [parent, name] = await this.#parentOf(path);
    if (!(await parent.lookup?.(name))) throw new FsError('ENOENT', `${path}: no such file or directory`);
    return [parent, name];
  }
}

export function splitPath(path: string): string[] {
  return path.split('/').filter((name) => name !== '' && name !== '.');
}

/**
 * Files mknod made in the last second, by path: the open that follows (the kernel's second half of
 * open(O_CREAT)) may use them whatever their mode, as the creating open may on a local file system.
 * The first open of the path takes the grant.
 */
class JustMade {
  static readonly WINDOW_MS = 1000;
  readonly #made = new Map<string, number>();

  add(path: string): void {
    const now = Date.now();
    // Grants never taken (a bare mknod(1)) expire; the map is in time order, so the old ones are first.
    for (const [old, at] of this.#made) {
      if (now - at <= JustMade.WINDOW_MS) break;
      this.#made.delete(old);
    }
    this.#made.delete(path);
    this.#made.set(path, now);
  }

  take(path: string): boolean {
    const at = this.#made.get(path);
    if (at === undefined) return false;
    this.#made.delete(path);
    return Date.now() - at <= JustMade.WINDOW_MS;
  }
}
