/**
 * src/fuse: the only fuse-native importer. Owns mounting a VFS tree (`mountTree`, the op table in
 * libfuse's terms; who else may use it, `MountAccess` and fuse.conf), errno names to numbers
 * (`errno.ts`), the handle table, mountinfo, stale mounts, the per-mount pid lock and `ServedMount`
 * (the one lifecycle of a served mount point).
 *
 * Must not import: node/, control/, world/, runtime/, manifest/ or cli/ (it serves any tree it is
 * given); of store/ only `makeDirectory`, which makes the mount point. Traps (SPEC §12): fuse-native's argument order differs from libfuse's C order in
 * places; every handler answers exactly once.
 */
import Fuse from 'fuse-native';
import type { VNode } from '../vfs/node.js';
import { allowsUserAllowOther, FUSE_CONF } from './fuse-conf.js';
import { fuseOperations, OPERATION_TIMEOUT_MS, type OperationOptions } from './operations.js';

/** Who besides the mounting user may use a mount (libfuse's options of these names); both off by default. */
export interface MountAccess {
  /** Every user of the host may enter the mount, not only the one who mounted it. */
  allowOther?: boolean;
  /** The kernel checks the mode bits the tree shows (owner: the daemon's uid/gid) for every caller. */
  defaultPermissions?: boolean;
}

export interface MountOptions extends OperationOptions, MountAccess {
  mountPoint: string;
  /** Shown in mount tables as the source, e.g. `acheron` or `acheron-world`. */
  fsname?: string;
}

/**
 * fuse-native reports any failed mount as "fuse failed", and the reason fusermount prints goes
 * nowhere (its stderr is closed). The one reason we can tell from here is a refused allow_other.
 */
async function mountFailure(error: Error, options: MountOptions): Promise<Error> {
  if (!options.allowOther || process.geteuid?.() === 0 || (await allowsUserAllowOther())) return error;
  return new Error(
    `${options.mountPoint}: allow_other is refused: a user other than root may use it only when ${FUSE_CONF} has a user_allow_other line (add it, or mount as root)`,
    { cause: error },
  );
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
    timeout: { default: OPERATION_TIMEOUT_MS, flush: false, read: false, write: false, release: false, open: false, fsync: false, fsyncdir: false },
  });

  const failed = await new Promise<Error | null>((resolve) => fuse.mount(resolve));
  if (failed) throw await mountFailure(failed, options);
  log.info({ mountPoint, allowOther: options.allowOther ?? false, defaultPermissions: options.defaultPermissions ?? false }, 'mounted');
  if (options.allowOther && !options.defaultPermissions)
    log.warn({ mountPoint }, "allow_other without default_permissions: every user of this host may do here whatever the mode bits allow, as the daemon's user");

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
