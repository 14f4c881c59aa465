import { isUtf8 } from 'node:buffer';
import { SerialQueue } from '../async/serial-queue.js';
import { FsError } from '../errors/errno.js';
import { classifyJson } from '../errors/json-prefix.js';
import { S_IFREG, type Attr, type Handle, type VNode } from './node.js';
import { O_APPEND, opensForReading, opensForWriting } from '../errors/open-flags.js';
import { readSlice } from './read-slice.js';

/** What a commit file hands its bytes to: the node runtime, or the relay to a remote node. */
export interface CommitTarget {
  /** The file as a service directory names it (`control/invoke.json`, `config.json`): messages start with it. */
  file: string;
  /** Largest payload a writer may send; a write past it is EFBIG. */
  maxBytes: number;
  /** What `maxBytes` is called where a user can change it (`runtime.max_input_bytes`). */
  limitName: string;
  /** Checked at open for writing (and by `commit` again): throws EPERM, EAGAIN or ENOENT. */
  admit(): void;
  /**
   * Throws ENOENT once the file is gone (its service removed by a reload): every later use of a
   * handle opened before fails with it (SPEC §5), where `admit` would answer only at the commit.
   * WorldFS knows it from the catalog event that removed the service.
   */
  alive?(): void;
  /**
   * Runs exactly one invocation with exactly these bytes and resolves once it has finished, with
   * the outcome document a same-descriptor read returns (`wantsOutcome`: the open can read it back;
   * a write-only one never does, so a relayed target need not fetch it). Rejections
   * (EINVAL, EPERM, ...) are recorded by the target and thrown as FsError.
   */
  commit(payload: Buffer, wantsOutcome: boolean): Promise<Buffer>;
  /**
   * Records an error found before any commit (EFBIG, a hole) where the writer can look; the errno
   * returns after it, so a writer that then reads `last_error.txt` sees this error (WorldFS: a relay).
   */
  record(error: FsError): void | Promise<void>;
  changedMs(): number;
  /**
   * A document file (config.json): what a read shows when this open has committed nothing, and
   * the file's size. Without it a fresh read returns end of file (control/invoke.json).
   */
  current?: () => Buffer;
}

/** A commit file's node: the WorldFS relay on the node commits a whole payload through its target. */
export interface CommitFileNode extends VNode {
  readonly commitTarget: CommitTarget;
}

export function commitTargetOf(node: VNode): CommitTarget | undefined {
  return (node as Partial<CommitFileNode>).commitTarget;
}

/** EFBIG for a payload of `size` bytes or more. */
function tooBig(target: CommitTarget, size: number): FsError {
  return new FsError('EFBIG', `${target.file}: payload of ${size} bytes or more exceeds ${target.limitName} (${target.maxBytes} bytes)`);
}

/** Records a refusal found before any commit where the writer can look, then throws it. */
async function refuse(target: CommitTarget, error: FsError): Promise<never> {
  await target.record(error);
  throw error;
}

/** A payload of `size` bytes is refused (and recorded) as a write past the limit would be. */
export async function checkPayloadSize(target: CommitTarget, size: number): Promise<void> {
  if (size > target.maxBytes) await refuse(target, tooBig(target, size));
}

/**
 * A JSON text is UTF-8 (RFC 8259). Decoded leniently, other bytes would pass the JSON and schema
 * checks as U+FFFD while the driver gets the bytes themselves: EINVAL, recorded.
 */
async function checkUtf8(target: CommitTarget, payload: Buffer): Promise<void> {
  if (!isUtf8(payload)) await refuse(target, new FsError('EINVAL', `${target.file}: not valid UTF-8 (a JSON text must be)`));
}

/**
 * A whole payload collected elsewhere (WorldFS ran this file's rule on its side): the same checks
 * and the same commit as the bytes written through one open here.
 */
export async function commitWhole(target: CommitTarget, payload: Buffer, wantsOutcome: boolean): Promise<Buffer> {
  target.admit();
  await checkPayloadSize(target, payload.length);
  await checkUtf8(target, payload);
  return target.commit(payload, wantsOutcome);
}

/**
 * `control/invoke.json` (SPEC §3 commit rule): each write-open buffers its own bytes; a flush with a
 * complete JSON value commits and waits for the outcome; a valid but unfinished prefix waits for more;
 * only whitespace is discarded; a syntax error is EINVAL at once. The first read after a write on an
 * O_RDWR open commits too and returns that invocation's own outcome; so does the first read after a
 * flush of that open committed (the close of a duplicate: bash's `>&3`), or it fails with that
 * commit's refusal, which the duplicate's closer may not have looked at. Release commits what is left.
 * A write that leaves a hole (EINVAL) or passes the limit (EFBIG) poisons the open: that write, every
 * later write, flush (each `close()`) and read fail with the same error, and nothing is committed.
 * Once the target is gone (`alive`), every use of the open but its release is ENOENT.
 */
export function commitFile(target: CommitTarget): CommitFileNode {
  return {
    commitTarget: target,
    async getattr(): Promise<Attr> {
      const mtimeMs = target.changedMs();
      return { mode: S_IFREG | 0o644, size: target.current?.().length ?? 0, mtimeMs, ctimeMs: mtimeMs };
    },
    truncate: (size) => refuseTruncate(target, size),
    async open(flags) {
      if (opensForWriting(flags)) target.admit();
      const readable = opensForReading(flags);
      return new CommitHandle(target, readable, readable ? target.current?.() : undefined, (flags & O_APPEND) !== 0);
    },
  };
}

/** Each open's steps, one at a time (see CommitHandle.#serial). */
const byOpen = new SerialQueue<CommitHandle>();

class CommitHandle implements Handle {
  #target: CommitTarget;
  #buffer: Buffer = Buffer.alloc(0);
  #length = 0;
  /** File offset where the uncommitted payload starts. */
  #base = 0;
  #poisoned: FsError | undefined;
  #outcome: Buffer = Buffer.alloc(0);
  /** File offset of the read that committed: the outcome's byte 0. */
  #committedAt = 0;
  /** A flush committed and nothing has read since: the next read starts the outcome, or throws the refusal. */
  #flushed: { refusal?: unknown } | undefined;
  readonly #readable: boolean;
  readonly #appends: boolean;

  /**
   * `initial`: a document file's content at open, served until this open commits. `appends`: an
   * O_APPEND open, whose writes follow on from the bytes before them whatever offset the kernel
   * gives (its idea of the file's size, which a synthetic file of size 0 does not keep).
   */
  constructor(target: CommitTarget, readable: boolean, initial: Buffer | undefined, appends: boolean) {
    this.#target = target;
    this.#readable = readable;
    if (initial) this.#outcome = initial;
    this.#appends = appends;
  }

  async write(fileOffset: number, data: Buffer): Promise<number> {
    this.#alive();
    if (this.#poisoned) throw this.#poisoned;
    const offset = this.#appends ? this.#base + this.#length : fileOffset;
    if (this.#length === 0 && (offset === 0 || offset === this.#base)) this.#base = offset;
    const at = offset - this.#base;
    if (at < 0 || at > this.#length) {
      throw await this.#poison(
        new FsError(
          'EINVAL',
          `${this.#target.file}: write at offset ${offset} leaves a hole or rewrites a committed payload (the next byte goes at ${this.#base + this.#length})`,
        ),
      );
    }
    const end = at + data.length;
    const { maxBytes } = this.#target;
    if (end > maxBytes) {
      throw await this.#poison(tooBig(this.#target, end));
    }
    if (end > this.#buffer.length) {
      const grown = Buffer.alloc(Math.min(maxBytes, Math.max(end, this.#buffer.length * 2, 4096)));
      this.#buffer.copy(grown, 0, 0, this.#length);
      this.#buffer = grown;
    }
    data.copy(this.#buffer, at);
    this.#length = Math.max(this.#length, end);
    return data.length;
  }

  async truncate(size: number): Promise<void> {
    this.#alive();
    return refuseTruncate(this.#target, size);
  }

  async fsync(): Promise<void> {
    this.#alive();
  }

  flush(): Promise<void> {
    return this.#serial(async () => {
      this.#alive();
      // Every close() of a poisoned open fails too: a writer that ignores short writes still learns.
      if (this.#poisoned) throw this.#poisoned;
      if (this.#length === 0) return;
      const state = classifyJson(this.#pending().toString('utf8'));
      if (state === 'empty') return this.#discard();
      if (state === 'prefix') return;
      if (!this.#readable) return void (await this.#commit(false));
      try {
        this.#outcome = await this.#commit(true);
        this.#flushed = {};
      } catch (error) {
        this.#flushed = { refusal: error };
        throw error;
      }
    });
  }

  read(offset: number, length: number): Promise<Buffer> {
    return this.#serial(async () => {
      this.#alive();
      if (this.#poisoned) throw this.#poisoned;
      // Only whitespace is no payload, as at a flush: discarded, and the read is one without a write.
      if (this.#length > 0 && this.#onlyWhitespace()) this.#discard();
      const flushed = this.#flushed;
      this.#flushed = undefined;
      if (this.#length > 0) {
        this.#outcome = await this.#commit(true);
        this.#committedAt = offset;
      } else if (flushed) {
        if ('refusal' in flushed) throw flushed.refusal;
        this.#committedAt = offset;
      }
      // An outcome is read from its start whatever the file offset (SPEC §3 transactions).
      return readSlice(this.#outcome, Math.max(0, offset - this.#committedAt), length);
    });
  }

  release(): Promise<void> {
    return this.#serial(async () => {
      // A poisoned open was recorded when it was poisoned.
      if (this.#poisoned || this.#length === 0) return;
      if (this.#onlyWhitespace()) return this.#discard();
      // Nobody waits for a release: the outcome, errors included, is in the service's files.
      await this.#commit(false).catch(() => undefined);
    });
  }

  /**
   * Each use but release starts here (inside the serial step for flush and read, so a use that
   * waited behind a commit sees a removal that came meanwhile). Release needs no check: its commit
   * asks `admit`, and nobody hears its errors.
   */
  #alive(): void {
    this.#target.alive?.();
  }

  #pending(): Buffer {
    return this.#buffer.subarray(0, this.#length);
  }

  #onlyWhitespace(): boolean {
    return classifyJson(this.#pending().toString('utf8')) === 'empty';
  }

  #discard(): void {
    this.#base += this.#length;
    this.#length = 0;
  }

  async #commit(wantsOutcome: boolean): Promise<Buffer> {
    const payload = Buffer.from(this.#pending());
    this.#discard();
    await checkUtf8(this.#target, payload);
    return this.#target.commit(payload, wantsOutcome);
  }

  async #poison(error: FsError): Promise<FsError> {
    this.#poisoned = error;
    this.#length = 0;
    await this.#target.record(error);
    return error;
  }

  /** Flush, read and release of one open never overlap, so no payload is committed twice. */
  #serial<T>(step: () => Promise<T>): Promise<T> {
    return byOpen.run(this, step);
  }
}

/** Truncating to 0 is a no-op (`: > f`); to a size, a refusal recorded as a refused write is: a program may ignore its errno. */
async function refuseTruncate(target: CommitTarget, size: number): Promise<void> {
  if (size !== 0) await refuse(target, new FsError('EINVAL', `${target.file}: can be truncated only to 0, not ${size} (it takes whole documents)`));
}
