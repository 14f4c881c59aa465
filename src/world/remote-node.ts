import { posix } from 'node:path';
import { RELAY_CHUNK_BYTES } from '../protocol/relay.js';
import { FsError } from '../errors/errno.js';
import { S_IFMT, type Attr, type FsStats, type Handle, type VNode } from '../vfs/node.js';
import { opensForReading, opensForWriting } from '../errors/open-flags.js';
import { openModeRefused } from '../vfs/dispatch.js';
import type { RelayOperation } from './relay-call.js';

/**
 * How long statfs, chown and symlink wait for the node (they only ask the kernel, or nothing): a node
 * of an earlier version drops an op it does not know, and `df` or `cp -a` should not wait the default minute.
 */
const SHORT_WAIT_MS = 5000;

/**
 * Sends one operation to the node that owns the tree (WorldCatalog.relay, bound to a node id).
 * `link`: the connection to the control server relays go out on now; a handle belongs to the one it
 * was opened on (the server ends its session, and the node releases it, when that one closes).
 */
export type Relay = ((operation: RelayOperation) => Promise<Record<string, unknown>>) & { readonly link?: () => object | undefined };

/** What a directory's child at `path` is: by default another RemoteNode (WorldFS binds some names to other blocks). */
export type RemoteChild = (path: string) => VNode;

/**
 * A file or directory of a node's own tree, seen from WorldFS: every operation is relayed to the
 * node and runs there against the node tree itself, so the commit rule, errnos and contents are
 * the node's (SPEC §9). `lookup` does not ask the node: the `getattr` that follows every lookup does,
 * and answers ENOENT for a name that is not there.
 */
export class RemoteNode implements VNode {
  readonly #relay: Relay;
  readonly path: string;
  readonly #childAt: RemoteChild | undefined;
  /** The node's own Dispatcher checks modes at open: one round trip less per open. */
  readonly checksOpenItself = true;

  constructor(relay: Relay, path: string, childAt?: RemoteChild) {
    this.#relay = relay;
    this.path = path;
    this.#childAt = childAt;
  }

  async getattr(): Promise<Attr> {
    const r = await this.#relay({ op: 'stat', path: this.path });
    // blocks, nlink: an export file's (du, tar -S, find -links); a node of an earlier version leaves them to the size, and 1.
    return {
      mode: Number(r.mode),
      size: Number(r.size),
      mtimeMs: Number(r.mtime_ms),
      ctimeMs: Number(r.ctime_ms),
      ...(r.blocks === undefined ? {} : { blocks: Number(r.blocks) }),
      ...(r.nlink === undefined ? {} : { nlink: Number(r.nlink) }),
    };
  }

  /** The node's answer: an export's file system, zeros for its synthetic files. */
  async statfs(): Promise<FsStats> {
    const r = await this.#relay({ op: 'statfs', path: this.path, timeout_ms: SHORT_WAIT_MS });
    const count = (key: keyof FsStats) => Number(r[key] ?? 0);
    return {
      bsize: count('bsize'),
      frsize: count('frsize'),
      blocks: count('blocks'),
      bfree: count('bfree'),
      bavail: count('bavail'),
      files: count('files'),
      ffree: count('ffree'),
    };
  }

  async lookup(name: string): Promise<VNode> {
    const path = this.#child(name);
    return this.#childAt ? this.#childAt(path) : new RemoteNode(this.#relay, path);
  }

  async readdir(): Promise<string[]> {
    return (await this.#relay({ op: 'list', path: this.path })).names as string[];
  }

  async open(flags: number): Promise<Handle> {
    // Taken before the open goes out: a connection that ends meanwhile makes the handle stale, not a stranger's.
    const before = this.#relay.link?.();
    const { fh } = await this.#relay({ op: 'open', path: this.path, flags });
    // None before: between the two connections of a move, where the open waited for the next one and went out on it.
    const link = before ?? this.#relay.link?.();
    return new RemoteHandle(this.#relay, this.path, Number(fh), opensForWriting(flags), link);
  }

  async truncate(size: number): Promise<void> {
    await this.#relay({ op: 'truncate', path: this.path, size });
  }

  async utimens(atimeMs: number, mtimeMs: number): Promise<void> {
    await this.#relay({ op: 'utimens', path: this.path, atime_ms: atimeMs, mtime_ms: mtimeMs });
  }

  /** As on the node's mount (an export's file; synthetic files answer EPERM): `sed -i`, `mv`, `cp -p` keep modes. */
  async chmod(mode: number): Promise<void> {
    await this.#relay({ op: 'chmod', path: this.path, mode: mode & 0o7777 });
  }

  /** A chown that keeps the owner shown: the node accepts it for an export's file, EPERM for a synthetic one. */
  async chown(): Promise<void> {
    await this.#relay({ op: 'chown', path: this.path, timeout_ms: SHORT_WAIT_MS });
  }

  /** fsyncdir: the node syncs the directory (an `fs/` export's) by path. */
  async fsync(datasync: boolean): Promise<void> {
    await this.#relay({ op: 'fsync', path: this.path, datasync });
  }

  /** The type bits go along: the node refuses anything but a regular file. */
  async mknod(name: string, mode: number): Promise<void> {
    await this.#relay({ op: 'mknod', path: this.#child(name), mode: mode & (S_IFMT | 0o7777) });
  }

  async mkdir(name: string, mode: number): Promise<void> {
    await this.#relay({ op: 'mkdir', path: this.#child(name), mode: mode & 0o7777 });
  }

  async unlink(name: string): Promise<void> {
    await this.#relay({ op: 'unlink', path: this.#child(name) });
  }

  async rmdir(name: string): Promise<void> {
    await this.#relay({ op: 'rmdir', path: this.#child(name) });
  }

  /** What the node shows a link holds: relative to its directory, inside the export. */
  async readlink(): Promise<string> {
    return String((await this.#relay({ op: 'readlink', path: this.path })).target);
  }

  /** The node makes it (a relative link inside an export) or refuses it as its own mount would. */
  async symlink(name: string, target: string): Promise<void> {
    await this.#relay({ op: 'symlink', path: this.#child(name), target, timeout_ms: SHORT_WAIT_MS });
  }

  async rename(name: string, newParent: VNode, newName: string): Promise<void> {
    // Both ends must be on the same node; elsewhere it is a copy, which is the caller's to do.
    if (!(newParent instanceof RemoteNode) || newParent.#relay !== this.#relay) throw new FsError('EXDEV', `${this.path}: rename across nodes`);
    await this.#relay({ op: 'rename', path: this.#child(name), to: newParent.#child(newName) });
  }

  #child(name: string): string {
    return posix.join(this.path, name);
  }
}

/**
 * A write-only ctl file of the node's tree (control/reset, jobs/<id>/cancel: mode 0200, fixed by the
 * service file table): a read-open is refused here, as the node would, without a relay. `grep -r` or
 * `tar` of a mount opens every one of them, and a refusal relayed back would also be logged as the
 * server's (RelayLog), sending an operator after a project policy that refused nothing.
 */
export class RemoteCtlFile extends RemoteNode {
  override async open(flags: number): Promise<Handle> {
    if (opensForReading(flags)) throw openModeRefused(this.path, 0o200);
    return super.open(flags);
  }
}

/**
 * One open of a remote file: a handle on the node, used by number until released. Once the link it
 * was opened on is lost (the connection to the control server ended, or the node's own link did: it
 * answers ESTALE), the node has released it and every use fails at once with ESTALE, without a
 * relay. Not EBADF (a bug), nor ENOTCONN or EHOSTUNREACH (they pass once the link is back, and this
 * never will): ESTALE is what NFS answers for a handle the server no longer knows; open it again.
 */
class RemoteHandle implements Handle {
  readonly #relay: Relay;
  readonly #path: string;
  readonly #fh: number;
  readonly #writable: boolean;
  readonly #link: object | undefined;
  /** Why the handle is gone, once it is. */
  #stale: string | undefined;

  constructor(relay: Relay, path: string, fh: number, writable: boolean, link: object | undefined) {
    this.#relay = relay;
    this.#path = path;
    this.#fh = fh;
    this.#writable = writable;
    this.#link = link;
  }

  async read(offset: number, length: number): Promise<Buffer> {
    const { data } = await this.#use({ op: 'read', offset, length: Math.min(length, RELAY_CHUNK_BYTES) });
    return Buffer.from(String(data), 'base64');
  }

  async write(offset: number, data: Buffer): Promise<number> {
    let written = 0;
    // Chunks of at most 256 KiB (SPEC §6); FUSE writes are smaller anyway (128 KiB with big_writes).
    for (let at = 0; at < data.length; at += RELAY_CHUNK_BYTES) {
      const chunk = data.subarray(at, at + RELAY_CHUNK_BYTES);
      const r = await this.#use({ op: 'write', offset: offset + at, data: chunk.toString('base64') });
      written += Number(r.written);
    }
    return written;
  }

  async flush(): Promise<void> {
    // Only a write-open has anything to flush (a commit); a read-only one would be a wasted round trip.
    if (this.#writable) await this.#use({ op: 'flush' });
  }

  /** A stale handle was released on the node already (its ESTALE would only reach a log): nothing to do. */
  async release(): Promise<void> {
    if (this.#lost() !== undefined) return;
    await this.#use({ op: 'release' }).catch((error: unknown) => {
      if (this.#stale === undefined) throw error;
    });
  }

  /** The node syncs its own handle: a real fsync(2) for an `fs/` export, nothing for a synthetic file. */
  async fsync(datasync: boolean): Promise<void> {
    await this.#use({ op: 'fsync', datasync });
  }

  async truncate(size: number): Promise<void> {
    await this.#use({ op: 'ftruncate', size });
  }

  /** One operation on the handle, unless it is stale. */
  async #use(operation: Omit<RelayOperation, 'path' | 'fh'>): Promise<Record<string, unknown>> {
    const lost = this.#lost();
    if (lost !== undefined) throw new FsError('ESTALE', lost);
    try {
      return await this.#relay({ ...operation, path: this.#path, fh: this.#fh });
    } catch (error) {
      if (error instanceof FsError && error.errno === 'ESTALE') this.#stale = error.message;
      throw error;
    }
  }

  #lost(): string | undefined {
    if (this.#stale === undefined && this.#relay.link && this.#relay.link() !== this.#link)
      this.#stale = `${this.#path}: the link to the control server was lost since the open, and the node released the handle with it; open the file again`;
    return this.#stale;
  }
}
