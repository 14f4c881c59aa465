import { FsError } from '../errors/errno.js';
import { S_IFREG, type Attr, type Handle, type VNode } from './node.js';
import { readSlice } from './read-slice.js';

export interface Rendered {
  data: Buffer | string;
  /** When this content last changed: the file's mtime and ctime. */
  mtimeMs: number;
}

const toBuffer = (data: Buffer | string): Buffer => (typeof data === 'string' ? Buffer.from(data) : data);

/** Serves any offset of fixed bytes (lib9p readbuf). */
export function readOnlyHandle(data: Buffer): Handle {
  return { read: async (offset, length) => readSlice(data, offset, length) };
}

/** Fixed content. */
export function staticFile(content: Buffer | string, mode = 0o444, mtimeMs = Date.now()): VNode {
  const data = toBuffer(content);
  return {
    async getattr(): Promise<Attr> {
      return { mode: S_IFREG | mode, size: data.length, mtimeMs, ctimeMs: mtimeMs };
    },
    async open() {
      return readOnlyHandle(data);
    },
  };
}

/**
 * Live content rendered at open into the handle: fresh for every open, stable within one (go-fuse's
 * direct-I/O example). getattr renders too, so `stat` sizes match what `cat` reads. `alive`, when
 * given, is asked again at every read: an open whose file has gone since (a removed service) fails
 * with its error instead of serving what it rendered (SPEC §5).
 */
export function snapshotFile(render: () => Rendered | Promise<Rendered>, mode = 0o444, alive?: () => void): VNode {
  return {
    async getattr(): Promise<Attr> {
      const { data, mtimeMs } = await render();
      return { mode: S_IFREG | mode, size: Buffer.byteLength(data), mtimeMs, ctimeMs: mtimeMs };
    },
    async open() {
      const { data, mtimeMs } = await render();
      const bytes = toBuffer(data);
      return {
        async read(offset, length) {
          alive?.();
          return readSlice(bytes, offset, length);
        },
        // fstat on this open describes what it reads, not a newer render.
        getattr: async () => ({ mode: S_IFREG | mode, size: bytes.length, mtimeMs, ctimeMs: mtimeMs }),
      };
    },
  };
}

/**
 * A Plan 9 ctl file: every write is one command, handed to `action` with its bytes; its error
 * reaches the writer's write(). Truncation (`echo > ctl` sends one) is accepted and ignored.
 */
export function ctlFile(action: (data: Buffer) => Promise<void>, changedMs: () => number = Date.now): VNode {
  return {
    async getattr(): Promise<Attr> {
      const mtimeMs = changedMs();
      return { mode: S_IFREG | 0o200, size: 0, mtimeMs, ctimeMs: mtimeMs };
    },
    async truncate(size) {
      if (size !== 0) throw new FsError('EINVAL', 'ctl files take no truncate to a non-zero size');
    },
    async open() {
      return {
        async write(_offset, data) {
          await action(data);
          return data.length;
        },
        async truncate() {},
      };
    },
  };
}
