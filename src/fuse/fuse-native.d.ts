// fuse-native 2.2.6 ships no types; this declares the part we use (SPEC §12).
declare module 'fuse-native' {
  type Callback = (...args: any[]) => void;
  interface FuseStat {
    mode: number;
    uid: number;
    gid: number;
    size: number;
    nlink?: number;
    ino?: number;
    mtime: Date | number;
    atime: Date | number;
    ctime: Date | number;
    blksize?: number;
    blocks?: number;
  }
  interface FuseOptions {
    force?: boolean;
    mkdir?: boolean;
    debug?: boolean;
    allowOther?: boolean;
    defaultPermissions?: boolean;
    uid?: number;
    gid?: number;
    fsname?: string;
    subtype?: string;
    maxRead?: number;
    entryTimeout?: number | string;
    attrTimeout?: number | string;
    autoUnmount?: boolean;
    timeout?: false | number | Record<string, number | false>;
  }
  class Fuse {
    constructor(mnt: string, ops: Record<string, Callback>, opts?: FuseOptions);
    mount(cb: (err: Error | null) => void): void;
    unmount(cb: (err: Error | null) => void): void;
    static unmount(mnt: string, cb: (err: Error | null) => void): void;
  }
  export default Fuse;
}
