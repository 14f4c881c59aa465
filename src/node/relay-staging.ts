import type { RelayRequest } from '../protocol/types.gen.js';
import { FsError } from '../errors/errno.js';
import { checkPayloadSize, type CommitTarget } from '../vfs/commit-file.js';

/** Bytes staged for invocations not yet committed, over all sessions: a bound, not a policy. */
const MAX_STAGED_BYTES = 256 << 20;

/** A payload above one relay chunk, arriving in chunks (`stage`) under its invoke's request id. */
interface Staged {
  path: string;
  payload: Buffer;
  /** Bytes by offset: a chunk sent again replaces itself. */
  chunks: Map<number, number>;
  atMs: number;
}

/**
 * The relay's payloads above one chunk (SPEC §9): the chunks of each arrive as `stage` requests under
 * the request id of the invoke that commits them, keyed `<session>/<request id>`, and that invoke
 * takes the whole payload. What is staged counts against one bound for the node.
 */
export class StagedPayloads {
  #staged = new Map<string, Staged>();
  #bytes = 0;

  /** One chunk; the first of a payload checks its size against the file's limit (`target`) and the node's bound. */
  async stage(r: RelayRequest, target: () => Promise<CommitTarget>): Promise<void> {
    const key = keyOf(r);
    let staged = this.#staged.get(key);
    if (!staged) {
      const size = r.size ?? 0;
      await checkPayloadSize(await target(), size);
      if (this.#bytes + size > MAX_STAGED_BYTES)
        throw new FsError('EAGAIN', `${r.path}: ${this.#bytes} bytes of other payloads are staged on this node (at most ${MAX_STAGED_BYTES}): try again`);
      // Checked again: another chunk of this payload may have got here during the await.
      staged = this.#staged.get(key) ?? { path: r.path, payload: Buffer.alloc(size), chunks: new Map(), atMs: Date.now() };
      if (!this.#staged.has(key)) this.#bytes += size;
      this.#staged.set(key, staged);
    }
    place(staged, r);
  }

  /** The whole payload of an invoke: its own data, after the chunks staged under its request id. */
  take(r: RelayRequest): Buffer {
    const key = keyOf(r);
    const staged = this.#staged.get(key);
    if (!staged) {
      const payload = Buffer.from(r.data ?? '', 'base64');
      if ((r.offset ?? 0) !== 0 || (r.size !== undefined && r.size !== payload.length))
        throw new FsError('EINVAL', `${r.path}: ${payload.length} of ${r.size ?? 0} bytes, and none staged under request id ${r.request_id}`);
      return payload;
    }
    this.#unstage(key);
    place(staged, r);
    const received = [...staged.chunks.values()].reduce((sum, n) => sum + n, 0);
    if (received !== staged.payload.length)
      throw new FsError('EINVAL', `${r.path}: ${received} of ${staged.payload.length} bytes staged under request id ${r.request_id}`);
    return staged.payload;
  }

  /** Drops the payloads whose `<session>/<request id>` key matches (a session gone, the link down). */
  drop(which: (key: string) => boolean): void {
    for (const key of [...this.#staged.keys()].filter(which)) this.#unstage(key);
  }

  /** Drops the payload staged under this request's key, if any. */
  dropOf(r: RelayRequest): void {
    this.#unstage(keyOf(r));
  }

  /** Drops the payloads untouched since `cutoffMs`. */
  sweep(cutoffMs: number): void {
    for (const [key, staged] of this.#staged) if (staged.atMs < cutoffMs) this.#unstage(key);
  }

  #unstage(key: string): void {
    const staged = this.#staged.get(key);
    if (!staged) return;
    this.#staged.delete(key);
    this.#bytes -= staged.payload.length;
  }
}

const keyOf = (r: RelayRequest): string => `${r.session}/${r.request_id}`;

function place(staged: Staged, r: RelayRequest): void {
  const data = Buffer.from(r.data ?? '', 'base64');
  const offset = r.offset ?? 0;
  if (staged.path !== r.path) throw new FsError('EINVAL', `request id ${r.request_id} stages a payload for ${staged.path}, not ${r.path}`);
  if (offset + data.length > staged.payload.length)
    throw new FsError('EINVAL', `${r.path}: a chunk at ${offset} of ${data.length} bytes ends past the payload's size ${staged.payload.length}`);
  data.copy(staged.payload, offset);
  staged.chunks.set(offset, data.length);
  staged.atMs = Date.now();
}
