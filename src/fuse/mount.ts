/**
 * src/fuse: the only fuse-native importer. Owns mounting a VFS tree (`mountTree`, the op table in
 * libfuse's terms), errno names to numbers (`errno.ts`), the handle table, mountinfo, stale mounts,
 * the per-mount pid lock and `ServedMount` (the one lifecycle of a served mount point).
 *
 * Must not import: node/, control/, world/, runtime/, manifest/ or cli/ (it serves any tree it is
 * given); of store/ only `makeDirectory`, which makes the mount point. Traps (SPEC §12): fuse-native's argument order differs from libfuse's C order in
 * places; every handler answers exactly once.
 */
import Fuse from 'fuse-native';
import type { VNode } from '../vfs/node.js';
import { fuseOperations, type OperationOptions } from './operations.js';

export interface MountOptions extends OperationOptions {
  mountPoint: string;
  /** Shown in mount tables as the source, e.g. `acheron` or `acheron-world`. */
  fsname?: string;
  allowOther?: boolean;
  defaultPermissions?: boolean;
}

export interface MountedTree {
  readonly mountPoint: string;
  /** See FuseOperations.busy. */
  readonly busy: number;
  unmount(): Promise<void>;
}

/** Mounts a VFS tree with fuse-native (the op table of `fuseOperations`). */
export async function mountTree(root: VNode, options: MountOptions): Promise<MountedTree> {
  const { log, mountPoint } = options;
  const operations = fuseOperations(root, options);
  const { ops } = operations;

  const fuse = new Fuse(mountPoint, ops, {
    // fuse-native drops these options, so they ride along in fsname (SPEC §12); direct_io is
    // required for synthetic files, whose sizes change between stat and read.
    fsname: `${options.fsname ?? 'acheron'},direct_io,big_writes,nonempty,atomic_o_trunc`,
    subtype: 'acheron',
    // Numbers 0 are ignored by fuse-native; the strings reach libfuse. Attributes are never cached
    // (sizes and times change with every invocation). Names are cached for a second, which saves a
    // lookup per path component on every open: a name that goes away meanwhile still fails, since
    // the handlers resolve every operation's path afresh (ENOENT), and negative entries are not cached.
    attrTimeout: '0',
    entryTimeout: '1',
    allowOther: options.allowOther ?? false,
    defaultPermissions: options.defaultPermissions ?? false,
    // Ops that wait for a driver or a relay carry their own bound (queue + timeout_ms + kill grace).
    timeout: { default: 15_000, flush: false, read: false, write: false, release: false, open: false, fsync: false, fsyncdir: false },
  });

  await new Promise<void>((resolve, reject) => fuse.mount((err) => (err ? reject(err) : resolve())));
  log.info({ mountPoint }, 'mounted');

  let unmounted: Promise<void> | undefined;
  return {
    mountPoint,
    get busy() {
      return operations.busy;
    },
    unmount() {
      unmounted ??= new Promise<void>((resolve) => {
        fuse.unmount((err) => {
          if (err) log.warn({ err, mountPoint }, 'unmount reported an error');
          resolve();
        });
      });
      return unmounted;
    },
  };
}
