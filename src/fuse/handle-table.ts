import { FsError } from '../errors/errno.js';
import type { Handle } from '../vfs/node.js';

/** Open handles by file-handle number. 0 is never used: fuse-native treats it as "no handle". */
export class HandleTable {
  #handles = new Map<number, Handle>();
  #next = 1;

  add(handle: Handle): number {
    while (this.#handles.has(this.#next) || this.#next === 0) this.#next = (this.#next + 1) & 0x7fffffff;
    const fh = this.#next;
    this.#handles.set(fh, handle);
    this.#next = (this.#next + 1) & 0x7fffffff;
    return fh;
  }

  get(fh: number): Handle {
    const handle = this.#handles.get(fh);
    if (!handle) throw new FsError('EBADF', `no open file handle ${fh}`);
    return handle;
  }

  remove(fh: number): Handle | undefined {
    const handle = this.#handles.get(fh);
    this.#handles.delete(fh);
    return handle;
  }

  get size(): number {
    return this.#handles.size;
  }
}
