import { posix } from 'node:path';
import { invokeWaitMs, RELAY_CHUNK_BYTES } from '../protocol/relay.js';
import { INVOKE_FILE, JOB_FILES, SERVICE_FILES, type ServiceFileKind } from '../protocol/service-files.js';
import type { ServiceDescriptor } from '../protocol/types.gen.js';
import { commitFile } from '../vfs/commit-file.js';
import { tableFromPaths } from '../vfs/directory.js';
import { opensForWriting } from '../errors/open-flags.js';
import type { Attr, Handle, VNode } from '../vfs/node.js';
import { readSlice } from '../vfs/read-slice.js';
import { relayInvoke } from './relay-invoke.js';
import { RemoteCtlFile, RemoteNode, type Relay } from './remote-node.js';

/** A document fetched for a stat or an open serves the stats that follow within this long. */
export const DOCUMENT_REUSE_MS = 1000;
/**
 * ... and the one open that follows within this long: the open of the same open(2) whose lookup
 * fetched it (or of the `cat` right after an invoke). An open later than that may come from another
 * command (`ls -l`, then a change on the node, then `cat`), which must read the node's bytes as
 * they are now, so it fetches afresh.
 */
export const OPEN_REUSE_MS = 50;
/** Operations that change nothing on the node (all others drop the node's kept documents). */
const LOOKS = new Set(['stat', 'statfs', 'list', 'read', 'read_file']);

/** A document as read_file returned it: attributes, the first chunk, and the node's handle for the rest. */
interface Snapshot {
  attr: Attr;
  data: Buffer;
  fh: number | undefined;
  fetchedMs: number;
  /** An open has read it (or it is incomplete): later opens fetch afresh; stats may still use it. */
  opened: boolean;
}

/**
 * The latest snapshot of each of a node's live documents, so that one command costs one read_file:
 * `cat` is a lookup (a stat), an open and an fstat (a stat again: fuse-native's getattr has no
 * handle). A stat uses a snapshot younger than DOCUMENT_REUSE_MS; an open uses one only if no open
 * has used it yet and it is younger than OPEN_REUSE_MS, so every other open (a poll loop of `cat`,
 * a `cat` after an earlier `ls -l`) reads afresh. Any change this mount relays to
 * the node drops its snapshots, so this mount never shows an outcome older than its own invocation;
 * an invoke's answer brings result.json and status.json as it left them (`offer`).
 */
export class DocumentCache {
  #kept = new WeakMap<Relay, Map<string, Snapshot>>();
  #watching = new WeakMap<Relay, Relay>();

  /** The node's relay, seen through this cache: an operation that may change something drops the node's snapshots. */
  watch(relay: Relay): Relay {
    let watched = this.#watching.get(relay);
    if (!watched) {
      // The documents use the watched relay, so their snapshots are kept under it.
      const self: Relay = async (operation) => {
        if (LOOKS.has(operation.op)) return relay(operation);
        // Before and after: a stat while it runs may fetch what it is about to change.
        this.#kept.delete(self);
        try {
          return await relay(operation);
        } finally {
          this.#kept.delete(self);
        }
      };
      watched = self;
      this.#watching.set(relay, watched);
      this.#watching.set(watched, watched);
    }
    return watched;
  }

  /** For a stat. */
  async attr(relay: Relay, path: string): Promise<Attr> {
    const kept = this.#fresh(relay, path);
    if (kept) return kept.attr;
    const snapshot = await readFile(relay, path);
    // A stat does not read on: a body longer than one chunk is fetched again by the open.
    if (snapshot.fh !== undefined) {
      void relay({ op: 'release', path, fh: snapshot.fh }).catch(() => undefined);
      snapshot.fh = undefined;
      snapshot.opened = true;
    }
    this.#keep(relay, path, snapshot);
    return snapshot.attr;
  }

  /** For an open: a snapshot no open has used yet, fetched just before, else a fresh one. */
  async open(relay: Relay, path: string): Promise<Snapshot> {
    const kept = this.#fresh(relay, path, OPEN_REUSE_MS);
    const snapshot = kept && !kept.opened ? kept : await readFile(relay, path);
    snapshot.opened = true;
    this.#keep(relay, path, snapshot);
    return snapshot;
  }

  /** Documents the node sent with an invoke's answer, as they were once it had finished: for the opens that follow. */
  offer(relay: Relay, directory: string, documents: Record<string, Record<string, unknown>>): void {
    for (const [name, document] of Object.entries(documents)) this.#keep(relay, `${directory}/${name}`, snapshotOf(document));
  }

  #fresh(relay: Relay, path: string, withinMs = DOCUMENT_REUSE_MS): Snapshot | undefined {
    const kept = this.#kept.get(relay)?.get(path);
    return kept && Date.now() - kept.fetchedMs <= withinMs ? kept : undefined;
  }

  #keep(relay: Relay, path: string, snapshot: Snapshot): void {
    let kept = this.#kept.get(relay);
    if (!kept) this.#kept.set(relay, (kept = new Map()));
    const now = Date.now();
    for (const [at, old] of kept) if (now - old.fetchedMs > DOCUMENT_REUSE_MS) kept.delete(at);
    kept.set(path, snapshot);
  }
}

async function readFile(relay: Relay, path: string): Promise<Snapshot> {
  return snapshotOf(await relay({ op: 'read_file', path }));
}

/** A read_file answer (or a document sent with an invoke's) as a snapshot. */
function snapshotOf(r: Record<string, unknown>): Snapshot {
  const data = Buffer.from(String(r.data ?? ''), 'base64');
  const attr = { mode: Number(r.mode), size: Number(r.size), mtimeMs: Number(r.mtime_ms), ctimeMs: Number(r.ctime_ms) };
  return { attr, data, fh: r.fh === undefined ? undefined : Number(r.fh), fetchedMs: Date.now(), opened: false };
}

/**
 * A live document of the node (result.json, status.json, ..., config.json, jobs/<id>/*.json): stat
 * and a read-only open are served from one read_file (SPEC §9), like `snapshotFile` on the node; a
 * write-open, truncate and the rest go per operation, and the node answers them as its own mount
 * (config.json takes writes, the others EACCES).
 */
class RemoteDocument extends RemoteNode {
  readonly #relay: Relay;
  readonly #documents: DocumentCache;
  readonly #alive: () => void;

  constructor(relay: Relay, path: string, documents: DocumentCache, alive: () => void) {
    super(relay, path);
    this.#relay = relay;
    this.#documents = documents;
    this.#alive = alive;
  }

  override getattr(): Promise<Attr> {
    return this.#documents.attr(this.#relay, this.path);
  }

  override async open(flags: number): Promise<Handle> {
    if (opensForWriting(flags)) return super.open(flags);
    return new DocumentHandle(this.#relay, this.path, await this.#documents.open(this.#relay, this.path), this.#alive);
  }
}

/**
 * One open of a document: its snapshot; past the first chunk, reads go to the node's handle. Once
 * its service is gone (`alive`), a read is ENOENT, as on the node (`snapshotFile`), not the snapshot.
 */
class DocumentHandle implements Handle {
  readonly #relay: Relay;
  readonly #path: string;
  readonly #snapshot: Snapshot;
  readonly #alive: () => void;

  constructor(relay: Relay, path: string, snapshot: Snapshot, alive: () => void) {
    this.#relay = relay;
    this.#path = path;
    this.#snapshot = snapshot;
    this.#alive = alive;
  }

  async read(offset: number, length: number): Promise<Buffer> {
    this.#alive();
    const { data, fh } = this.#snapshot;
    const local = readSlice(data, offset, length);
    if (fh === undefined || offset + length <= data.length) return local;
    const from = offset + local.length;
    const rest = await this.#relay({ op: 'read', path: this.#path, fh, offset: from, length: Math.min(offset + length - from, RELAY_CHUNK_BYTES) });
    return Buffer.concat([local, Buffer.from(String(rest.data), 'base64')]);
  }

  async release(): Promise<void> {
    if (this.#snapshot.fh !== undefined) await this.#relay({ op: 'release', path: this.#path, fh: this.#snapshot.fh });
  }
}

/**
 * `control/invoke.json` in WorldFS (SPEC §9): the same commitFile block as on the node runs the
 * commit rule here, so the bytes of a commit are exactly those the node's own mount would take;
 * each commit is one relayed `invoke` with a new request id (a payload above one chunk first goes
 * as `stage` chunks under that id), and the node commits it through the service's own target:
 * admission, EFBIG, the schema, the run, at most once. Admission is the node's, at the commit: an
 * open costs no round trip (docs/worldfs.md). An error found here before any commit (EFBIG, a
 * hole) is sent to the node to record, as its own mount would.
 */
function remoteInvokeFile(relay: Relay, path: string, service: LiveService, documents: DocumentCache): VNode {
  return commitFile({
    file: INVOKE_FILE,
    limitName: 'runtime.max_input_bytes',
    get maxBytes() {
      return service.descriptor().runtime.max_input_bytes;
    },
    admit: () => void service.descriptor(),
    alive: service.alive,
    commit: async (payload, wantsOutcome) => {
      // A release commits unasked: never into a service of the same id added since.
      service.alive();
      const timeoutMs = invokeWaitMs(service.descriptor().runtime);
      const answer = await relayInvoke(relay, path, payload, { outcome: wantsOutcome, documents: true, timeoutMs });
      // After the relay dropped the node's snapshots: these are of the moment the invocation had finished.
      documents.offer(relay, posix.dirname(posix.dirname(path)), answer.documents);
      return answer.outcome;
    },
    // Awaited, so last_error.txt shows the error once the write's errno is back; a failed relay only loses the record.
    record: (error) =>
      relay({ op: 'reject', path, errno: error.errno === 'EFBIG' ? 'EFBIG' : 'EINVAL', message: error.message }).then(
        () => undefined,
        () => undefined,
      ),
    changedMs: service.changedMs,
  });
}

/** Kinds served from the catalog (README.md, SCHEMA.json, ...), not relayed. */
const CATALOG_KINDS = new Set<ServiceFileKind>(['readme', 'schema', 'template', 'host']);
/** A service's files that WorldFS relays to its node (the others it renders from the catalog). */
const LIVE_FILES = SERVICE_FILES.filter((f) => !CATALOG_KINDS.has(f.kind));
export const LIVE_FILE_PATHS: readonly string[] = LIVE_FILES.map((f) => f.path);
/** The write-only ctl files (control/reset, ...): mode 0200. */
const CONTROL_KINDS = new Set(SERVICE_FILES.filter((f) => f.mode === 0o200).map((f) => f.kind));
/** The read-only files of a job directory: documents. */
const JOB_DOCUMENTS = new Set(JOB_FILES.filter((f) => f.mode === 0o444).map((f) => f.path));

export interface LiveService {
  serviceId: string;
  /** The service's catalog entry now; throws ENOENT once it is gone or hidden. */
  descriptor(): ServiceDescriptor;
  /**
   * Throws ENOENT once the catalog says the node retired the runtime these files were opened on
   * (removed, or removed and added again): every later use of a handle opened before fails with
   * it, as on the node's own mount (docs/node-tree.md, errno table).
   */
  alive(): void;
  changedMs(): number;
}

/**
 * A service's live files in WorldFS, from the service file table like the node tree's: documents
 * read whole, control/invoke.json committed whole, control/* ctl files and jobs/ listings per
 * operation. Returns the top-level entries (control/ is a table directory here).
 */
export function liveServiceFiles(nodeRelay: Relay, documents: DocumentCache, service: LiveService): Array<readonly [string, VNode]> {
  const relay = documents.watch(nodeRelay);
  const base = `/services/${service.serviceId}`;
  const document = (path: string): VNode => new RemoteDocument(relay, path, documents, service.alive);
  const jobFile = (path: string): VNode => (JOB_DOCUMENTS.has(posix.basename(path)) ? document(path) : new RemoteCtlFile(relay, path));
  const bind = (kind: ServiceFileKind, path: string): VNode => {
    if (kind === 'invoke') return remoteInvokeFile(relay, path, service, documents);
    if (kind === 'jobs') return new RemoteNode(relay, path, (job) => new RemoteNode(relay, job, jobFile));
    return CONTROL_KINDS.has(kind) ? new RemoteCtlFile(relay, path) : document(path);
  };
  const files = LIVE_FILES.map((f) => [f.path, bind(f.kind, `${base}/${f.path}`)] as const);
  return tableFromPaths(files, service.changedMs);
}
