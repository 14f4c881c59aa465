import type { RelayRequest } from '../protocol/types.gen.js';
import { FsError } from '../errors/errno.js';
import type { Handle } from '../vfs/node.js';

interface RelayHandle {
  handle: Handle;
  /** The path it was opened on: every use must name it. */
  path: string;
  usedMs: number;
}

/**
 * The handles relayed opens keep for their session's next operations (`fh`), keyed
 * `<session>:<fh>`: each lives until it is released, its session goes, or it is left idle.
 */
export class RelayHandles {
  #handles = new Map<string, RelayHandle>();
  /**
   * Numbers start from this process's start time (1024 a millisecond), so a handle of an earlier
   * process is never taken for one of this; those below `#lostBelow` were released with the link.
   */
  #nextFh = Date.now() * 1024;
  #lostBelow = this.#nextFh;
  /** How long an unused handle is kept (the sweep's business; named in EBADF). */
  readonly #idleMs: number;

  constructor(idleMs: number) {
    this.#idleMs = idleMs;
  }

  keep(r: RelayRequest, handle: Handle): number {
    const fh = this.#nextFh++;
    this.#handles.set(`${r.session}:${fh}`, { handle, path: r.path, usedMs: Date.now() });
    return fh;
  }

  /** The handle `r` names (`fh`), of `r`'s session and path. */
  get(r: RelayRequest): Handle {
    const kept = this.#handles.get(`${r.session}:${r.fh}`);
    // The server checked the path of this request, so the handle must be of that path.
    // ESTALE, not EBADF: the requester did nothing wrong, the link went (docs/errors.md).
    if (!kept && r.fh !== undefined && r.fh < this.#lostBelow)
      throw new FsError(
        'ESTALE',
        `${r.path}: relay handle ${r.fh} was released when the node's link to the control server was lost (or the node restarted) since the open; open the file again`,
      );
    if (!kept || kept.path !== r.path)
      throw new FsError('EBADF', `${r.path}: no open relay handle ${r.fh} for this path (released, or idle for more than ${this.#idleMs / 60_000} min)`);
    kept.usedMs = Date.now();
    return kept.handle;
  }

  /** The handle `r` names, no longer kept: the caller releases it. */
  take(r: RelayRequest): Handle {
    const handle = this.get(r);
    this.#handles.delete(`${r.session}:${r.fh}`);
    return handle;
  }

  /** The link to the control server went down: every handle handed out so far is lost (see `drop`). */
  linkLost(): void {
    this.#lostBelow = this.#nextFh;
  }

  /** Releases every handle whose key `which` picks (its session went). */
  async drop(which: (key: string) => boolean): Promise<void> {
    const gone = [...this.#handles].filter(([key]) => which(key));
    for (const [key] of gone) this.#handles.delete(key);
    await Promise.all(gone.map(([, h]) => h.handle.release?.().catch(() => undefined)));
  }

  /** Releases the handles unused since `cutoff`. */
  sweep(cutoff: number): void {
    for (const [key, kept] of this.#handles) {
      if (kept.usedMs >= cutoff) continue;
      this.#handles.delete(key);
      void kept.handle.release?.().catch(() => undefined);
    }
  }
}

/** Runs `use` with a handle just opened; if it fails, the handle is released (nobody else holds it). */
export async function releasedOnFailure<T>(handle: Handle, use: () => Promise<T> | T): Promise<T> {
  try {
    return await use();
  } catch (error) {
    await handle.release?.().catch(() => undefined);
    throw error;
  }
}
