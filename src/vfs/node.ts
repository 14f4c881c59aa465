/**
 * The synthetic tree's two interfaces (go-fuse `fs` style): a VNode implements only the operations
 * it supports and `dispatch.ts` answers every other one with the SPEC §3 default; a Handle holds
 * the state of one open (Plan 9: one private channel per open).
 */
export interface Attr {
  /** Full st_mode including the file type bits (S_IFDIR, S_IFREG, S_IFLNK). */
  mode: number;
  size: number;
  mtimeMs: number;
  ctimeMs: number;
  atimeMs?: number;
  nlink?: number;
  ino?: number;
  /** 512-byte blocks allocated (a real file's); absent: as many as the size needs (`du`, `tar -S` read it). */
  blocks?: number;
}

/**
 * statfs(2) of the file system a node's data is really on (an export's directory); the synthetic
 * tree is on none. Block counts are in units of `frsize`.
 */
export interface FsStats {
  bsize: number;
  frsize: number;
  blocks: number;
  bfree: number;
  bavail: number;
  files: number;
  ffree: number;
}

export interface VNode {
  getattr(): Promise<Attr>;
  /** Directories: undefined means ENOENT. */
  lookup?(name: string): Promise<VNode | undefined>;
  /** Directories: names in a deterministic order, without `.` and `..`. */
  readdir?(): Promise<string[]>;
  /** dispatch has already checked the mode bits (EACCES), unless `checksOpenItself`. */
  open?(flags: number): Promise<Handle>;
  /** A remote node (WorldFS) whose owner checks modes at open: dispatch skips its own getattr round trip. */
  readonly checksOpenItself?: boolean;
  /** Path truncate: `cmd > f` sends one before writing. */
  truncate?(size: number): Promise<void>;
  utimens?(atimeMs: number, mtimeMs: number): Promise<void>;
  chmod?(mode: number): Promise<void>;
  /**
   * A chown that keeps the owner the mount shows (`cp -a`, `rsync -a` as root set it on every file):
   * accepted where files are real (exports); it changes nothing. Any other owner is refused after it
   * (a read-only export refuses first, EROFS).
   */
  chown?(): Promise<void>;
  /** The file system this node is on; absent = a synthetic node, on none (statfs answers zeros, as /proc does). */
  statfs?(): Promise<FsStats>;
  /** Directories: fsync(2) of the directory itself (a rename or create made durable); absent = nothing to sync. */
  fsync?(datasync: boolean): Promise<void>;
  readlink?(): Promise<string>;
  /** Directory operations take the child's name (the node is the parent). */
  /**
   * Makes an empty regular file (EEXIST when the name is taken); the kernel then opens it with the
   * caller's own flags. There is no `create`: fuse-native would not pass those flags (O_APPEND).
   */
  mknod?(name: string, mode: number): Promise<void>;
  mkdir?(name: string, mode: number): Promise<void>;
  unlink?(name: string): Promise<void>;
  rmdir?(name: string): Promise<void>;
  symlink?(name: string, target: string): Promise<void>;
  /** Hard links are never made: a directory that refuses every change answers its own errno (EROFS) here first. */
  link?(name: string): Promise<void>;
  rename?(name: string, newParent: VNode, newName: string): Promise<void>;
}

export interface Handle {
  read?(offset: number, length: number): Promise<Buffer>;
  write?(offset: number, data: Buffer): Promise<number>;
  /** Every close(2) of a descriptor sharing this open; may come twice, the first before any data. */
  flush?(): Promise<void>;
  /** The last close; the kernel ignores its result, so errors must be reported elsewhere. */
  release?(): Promise<void>;
  truncate?(size: number): Promise<void>;
  /** fsync(2), or fdatasync(2) when `datasync`; absent = nothing to sync (synthetic files). */
  fsync?(datasync: boolean): Promise<void>;
  /** fstat on this open: the attributes of the snapshot it reads, when it holds one (WorldFS documents). */
  getattr?(): Promise<Attr>;
}

export const S_IFDIR = 0o040000;
export const S_IFREG = 0o100000;
export const S_IFLNK = 0o120000;
export const S_IFMT = 0o170000;

export function isDirectoryMode(mode: number): boolean {
  return (mode & S_IFMT) === S_IFDIR;
}

/** A mode mknod(2) makes a regular file with: S_IFREG, or no type bits at all. */
export function makesRegularFile(mode: number): boolean {
  return (mode & S_IFMT) === S_IFREG || (mode & S_IFMT) === 0;
}
