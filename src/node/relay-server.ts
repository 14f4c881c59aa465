import type { Logger } from 'pino';
import type { RelayOutcome, RelayRequest } from '../protocol/types.gen.js';
import { RELAY_CHUNK_BYTES } from '../protocol/relay.js';
import { SERVICE_FILES } from '../protocol/service-files.js';
import { commitTargetOf, commitWhole, type CommitTarget } from '../vfs/commit-file.js';
import { splitPath, type Dispatcher } from '../vfs/dispatch.js';
import { answerErrno, errnoNameOf, FsError, systemErrorText } from '../errors/errno.js';
import { oneLine } from '../protocol/schemas.js';
import { readOnlyHandle } from '../vfs/files.js';
import { S_IFREG, type Handle } from '../vfs/node.js';
import { StagedPayloads } from './relay-staging.js';
import { RelayHandles, releasedOnFailure } from './relay-handles.js';

/** How long a request id is remembered, and how long an untouched relay handle lives. */
const REMEMBER_MS = 10 * 60_000;
/** Beyond this many remembered ids, the oldest are forgotten first (a bound, not a policy). */
const MAX_REMEMBERED = 10_000;

/** What an invoke with `documents` answers besides: the service's files a writer reads next. */
const DOCUMENTS_AFTER_INVOKE = SERVICE_FILES.filter((f) => f.kind === 'result' || f.kind === 'status').map((f) => f.path);

/**
 * Operations not remembered: those that only look (a read of a committed handle repeats its bytes)
 * and stage, which writes the same bytes to the same place if repeated and shares its request id
 * with the invoke it belongs to.
 */
const NOT_REMEMBERED = new Set(['stat', 'statfs', 'list', 'read', 'read_file', 'stage']);

/**
 * The node's side of the WorldFS relay (SPEC §9): each relayed operation runs against this node's
 * own tree through the same Dispatcher that serves its FUSE mount, so the commit rule, the errnos (one
 * mapping, `answerErrno`, as on the mount) and the files are exactly the node's. Semantic operations
 * do a whole job in one round trip: `read_file` opens, reads and releases a document; `invoke`
 * commits a whole payload (WorldFS ran the commit rule on its side) through the file's own commit
 * target. Handles and staged payloads are per requesting session, and all go when the link to the
 * control server does. A request id of a session seen in the last 10 minutes gets its first outcome
 * again instead of running twice (at most once); operations that only look are not kept.
 */
export class RelayServer {
  #dispatch: Dispatcher;
  #log: Logger;
  #handles = new RelayHandles(REMEMBER_MS);
  #seen = new Map<string, { outcome: Promise<RelayOutcome>; op: string; path: string; atMs: number }>();
  #staged = new StagedPayloads();
  #sweeper: NodeJS.Timeout;
  /**
   * Bumped when every session goes (link down, close): an operation that began before cannot keep
   * a handle no one will release. Sessions dropped one by one are remembered in `#dropped`.
   */
  #epoch = 0;
  #dropped = new Map<string, number>();

  constructor(dispatch: Dispatcher, log: Logger) {
    this.#dispatch = dispatch;
    this.#log = log;
    this.#sweeper = setInterval(() => this.#sweep(), 60_000);
    this.#sweeper.unref();
  }

  execute(request: RelayRequest): Promise<RelayOutcome> {
    const key = `${request.session}/${request.request_id}`;
    const seen = this.#seen.get(key);
    if (seen) {
      if (seen.op === request.op && seen.path === request.path) return seen.outcome;
      return Promise.resolve({ ok: false, errno: 'EINVAL', message: `request id ${request.request_id} was used for ${seen.op} ${seen.path}` });
    }
    const outcome = this.#run(request, this.#epoch).then(
      (result): RelayOutcome => ({ ok: true, result }),
      (error: unknown): RelayOutcome => ({
        ok: false,
        errno: answerErrno(error, this.#log, { op: request.op, path: request.path, session: request.session }),
        message: relayedMessage(request, error),
      }),
    );
    if (NOT_REMEMBERED.has(request.op)) return outcome;
    this.#seen.set(key, { outcome, op: request.op, path: request.path, atMs: Date.now() });
    if (this.#seen.size > MAX_REMEMBERED) this.#seen.delete(this.#seen.keys().next().value as string);
    return outcome;
  }

  /** The requester's connection closed: its handles are released, as a close would, and its staged payloads dropped. */
  dropSession(session: string): Promise<void> {
    this.#dropped.set(session, Date.now());
    return this.#drop((key) => key.startsWith(`${session}:`) || key.startsWith(`${session}/`));
  }

  /** The link to the control server went down: no session can come back to its handles. */
  dropAll(): Promise<void> {
    this.#epoch++;
    this.#handles.linkLost();
    return this.#drop(() => true);
  }

  async #drop(which: (key: string) => boolean): Promise<void> {
    this.#staged.drop(which);
    await this.#handles.drop(which);
  }

  /** The node stops: every handle still open is released. */
  close(): Promise<void> {
    clearInterval(this.#sweeper);
    return this.dropAll();
  }

  async #run(r: RelayRequest, epoch: number): Promise<Record<string, unknown>> {
    // The kernel never sends these; a path from the network might (fs/ exports must not be left).
    for (const path of [r.path, r.to ?? '/']) {
      if (path.includes('\0') || path.split('/').includes('..')) throw new FsError('EINVAL', `${path}: relayed paths may not contain .. or NUL`);
    }
    if (r.target?.includes('\0')) throw new FsError('EINVAL', `${r.path}: a link target may not contain NUL`);
    const d = this.#dispatch;
    switch (r.op) {
      case 'stat': {
        const attr = await d.getattr(r.path);
        return {
          mode: attr.mode,
          size: attr.size,
          mtime_ms: attr.mtimeMs,
          ctime_ms: attr.ctimeMs,
          ...(attr.blocks === undefined ? {} : { blocks: attr.blocks }),
          ...(attr.nlink === undefined ? {} : { nlink: attr.nlink }),
        };
      }
      case 'statfs':
        return { ...(await d.statfs(r.path)) };
      case 'list':
        return { names: await d.readdir(r.path) };
      case 'open': {
        const handle = await d.open(r.path, r.flags ?? 0);
        return { fh: await releasedOnFailure(handle, () => this.#keep(r, epoch, handle)) };
      }
      case 'mknod':
        await d.mknod(r.path, r.mode ?? S_IFREG | 0o644);
        return {};
      case 'read': {
        const handle = this.#handles.get(r);
        if (!handle.read) throw new FsError('EBADF', `${r.path}: not open for reading`);
        return { data: (await handle.read(r.offset ?? 0, r.length ?? 0)).toString('base64') };
      }
      case 'write': {
        const handle = this.#handles.get(r);
        if (!handle.write) throw new FsError('EBADF', `${r.path}: not open for writing`);
        return { written: await handle.write(r.offset ?? 0, Buffer.from(r.data ?? '', 'base64')) };
      }
      case 'flush':
        await this.#handles.get(r).flush?.();
        return {};
      case 'fsync':
        // With a handle: fsync of an open file; without: of a directory (fsyncdir), by path.
        await (r.fh === undefined ? d.fsyncdir(r.path, r.datasync ?? false) : this.#handles.get(r).fsync?.(r.datasync ?? false));
        return {};
      case 'release':
        await this.#handles.take(r).release?.();
        return {};
      case 'ftruncate': {
        const handle = this.#handles.get(r);
        await (handle.truncate ? handle.truncate(r.size ?? 0) : d.truncate(r.path, r.size ?? 0));
        return {};
      }
      case 'truncate':
        await d.truncate(r.path, r.size ?? 0);
        return {};
      case 'utimens':
        await d.utimens(r.path, r.atime_ms ?? Date.now(), r.mtime_ms ?? Date.now());
        return {};
      case 'chown':
        // WorldFS asks only for a chown that keeps the owner it shows (any other is EPERM there).
        await d.chown(r.path, true);
        return {};
      case 'chmod':
        if (r.mode === undefined) throw new FsError('EINVAL', 'chmod without a mode');
        await d.chmod(r.path, r.mode);
        return {};
      case 'mkdir':
        await d.mkdir(r.path, r.mode ?? 0o755);
        return {};
      case 'unlink':
        await d.unlink(r.path);
        return {};
      case 'rmdir':
        await d.rmdir(r.path);
        return {};
      case 'rename':
        if (r.to === undefined) throw new FsError('EINVAL', 'rename without a target path');
        await d.rename(r.path, r.to);
        return {};
      case 'readlink':
        return { target: await d.readlink(r.path) };
      case 'symlink':
        if (r.target === undefined) throw new FsError('EINVAL', 'symlink without a target');
        await d.symlink(r.target, r.path);
        return {};
      case 'read_file':
        return this.#readFile(r, epoch);
      case 'stage':
        await this.#staged.stage(r, () => this.#commitTarget(r.path));
        // The session went while the first chunk was checked: nobody would take or drop what it staged.
        if (this.#gone(r, epoch)) {
          this.#staged.dropOf(r);
          throw new FsError('ENOTCONN', `${r.path}: the session that staged it is gone; dropped`);
        }
        return {};
      case 'invoke': {
        const target = await this.#commitTarget(r.path);
        const outcome = await commitWhole(target, this.#staged.take(r), r.outcome === true);
        const answer = r.outcome === true ? await this.#body(r, epoch, readOnlyHandle(outcome), outcome.length) : {};
        return r.documents === true ? { ...answer, documents: await this.#documentsAfter(r.path) } : answer;
      }
      case 'reject': {
        // The client's words, into last_error.txt: one line, as the node's own refusals are (no forged lines after it).
        const message = oneLine(r.message ?? `${r.path}: refused by WorldFS before any commit`).slice(0, REJECT_MESSAGE_MAX);
        (await this.#commitTarget(r.path)).record(new FsError(r.errno ?? 'EINVAL', message));
        return {};
      }
    }
  }

  /** A document in one round trip: its attributes and bytes from one open, as a `cat` would read them. */
  async #readFile(r: RelayRequest, epoch: number): Promise<Record<string, unknown>> {
    const { handle, attr } = await this.#dispatch.openToRead(r.path);
    return releasedOnFailure(handle, async () => ({
      mode: attr.mode,
      mtime_ms: attr.mtimeMs,
      ctime_ms: attr.ctimeMs,
      ...(await this.#body(r, epoch, handle, attr.size)),
    }));
  }

  /**
   * The first chunk of what a handle reads, with the size; a longer body stays open on the node
   * as `fh` (read it with `read`, then release it), anything else is released now.
   */
  async #body(r: RelayRequest, epoch: number, handle: Handle, size: number): Promise<Record<string, unknown>> {
    const limit = Math.min(r.length ?? RELAY_CHUNK_BYTES, RELAY_CHUNK_BYTES);
    const data = await (handle.read as NonNullable<Handle['read']>)(0, limit);
    const more = data.length === limit && size > data.length;
    if (!more) await handle.release?.();
    return { size: more ? size : data.length, data: data.toString('base64'), ...(more ? { fh: this.#keep(r, epoch, handle) } : {}) };
  }

  /**
   * The documents a writer usually reads next (result.json, status.json), as they are once an
   * invoke has finished: saves WorldFS the round trip of that read. Only those of at most one chunk.
   */
  async #documentsAfter(path: string): Promise<Record<string, unknown>> {
    const [top, serviceId] = splitPath(path);
    if (top !== 'services' || serviceId === undefined) return {};
    const documents: Record<string, unknown> = {};
    for (const name of DOCUMENTS_AFTER_INVOKE) {
      // The invocation has run whatever happens here: a document that cannot be read is left out.
      const opened = await this.#dispatch.openToRead(`/services/${serviceId}/${name}`).catch(() => undefined);
      if (!opened) continue;
      const { handle, attr } = opened;
      const data = attr.size <= RELAY_CHUNK_BYTES ? await (handle.read as NonNullable<Handle['read']>)(0, RELAY_CHUNK_BYTES).catch(() => undefined) : undefined;
      await handle.release?.().catch(() => undefined);
      if (data) documents[name] = { mode: attr.mode, size: data.length, mtime_ms: attr.mtimeMs, ctime_ms: attr.ctimeMs, data: data.toString('base64') };
    }
    return documents;
  }

  async #commitTarget(path: string): Promise<CommitTarget> {
    const target = commitTargetOf(await this.#dispatch.resolve(path));
    if (!target) throw new FsError('EINVAL', `${path}: not a file that takes whole payloads (control/invoke.json, config.json)`);
    return target;
  }

  /**
   * Keeps an opened handle for the session's next operations, unless the session went while it was
   * being opened (`epoch`: the one the operation began in): then no one would ever release it, and
   * the caller releases it.
   */
  #keep(r: RelayRequest, epoch: number, handle: Handle): number {
    if (this.#gone(r, epoch)) throw new FsError('ENOTCONN', `${r.path}: the session that opened it is gone; released`);
    return this.#handles.keep(r, handle);
  }

  /** Whether the request's session went after its operation began in `epoch`. */
  #gone(r: RelayRequest, epoch: number): boolean {
    return epoch !== this.#epoch || this.#dropped.has(r.session);
  }

  #sweep(): void {
    const cutoff = Date.now() - REMEMBER_MS;
    for (const [id, entry] of this.#seen) if (entry.atMs < cutoff) this.#seen.delete(id);
    for (const [session, droppedMs] of this.#dropped) if (droppedMs < cutoff) this.#dropped.delete(session);
    this.#staged.sweep(cutoff);
    this.#handles.sweep(cutoff);
  }
}

/** A refusal WorldFS reports (`reject`) is recorded with at most this much of its message. */
const REJECT_MESSAGE_MAX = 1024;

/** What the requester is told: a system error's message names real paths (an export's directory), so it gets the relayed path instead. */
function relayedMessage(request: RelayRequest, error: unknown): string {
  if (!(error instanceof Error)) return String(error);
  const errno = error instanceof FsError ? undefined : errnoNameOf(error);
  return errno === undefined ? error.message : `${request.op} ${request.path}: ${systemErrorText(errno, error.message)}`;
}
