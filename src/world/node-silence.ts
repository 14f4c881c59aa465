import { FsError } from '../errors/errno.js';
import type { RelayOperation } from './relay-call.js';

/**
 * The operations the mount answers ETIMEDOUT itself after its bound (docs/worldfs.md "Bounds"),
 * which a node answers without waiting for a driver: a stat, ls, lookup, a live document's read_file.
 */
const METADATA_OPS = new Set<string>([
  'stat',
  'statfs',
  'list',
  'read_file',
  'readlink',
  'mkdir',
  'mknod',
  'unlink',
  'rmdir',
  'rename',
  'chmod',
  'chown',
  'symlink',
  'truncate',
  'utimens',
]);

/**
 * fuse-native's timer starts a little before the relay goes out, and a timer may fire a millisecond
 * early: the kernel's next try (a lookup after a revalidation that timed out) must find the node silent.
 */
const TIMER_SLACK_MS = 1000;

type Send = (operation: RelayOperation) => Promise<Record<string, unknown>>;

/**
 * Whether a node has gone silent, for one mount. A node that has left a metadata operation
 * unanswered for the mount's own bound, and answered nothing since it went out, is silent until it
 * answers anything (or the relay fails otherwise, e.g. EHOSTUNREACH); meanwhile new metadata
 * operations on it answer ETIMEDOUT at once instead of each waiting the bound again (a stat's
 * revalidation and lookup, each entry of an `ls -l`). One stat at a time still goes out as a probe,
 * so that a node that comes back is seen to as soon as it answers, even after the server gave up
 * on the operations it had been sent.
 */
export class NodeSilence {
  readonly #nodeId: string;
  readonly #boundMs: number;
  readonly #now: () => number;
  /** The metadata operations in flight, by when they went out (oldest first). */
  readonly #inFlight = new Set<{ startedMs: number }>();
  #lastAnswerMs = -Infinity;
  /** Set once the node is silent: when the operation it left unanswered went out. */
  #silentSinceMs: number | undefined;
  #probing = false;

  constructor(nodeId: string, boundMs: number, now: () => number = () => performance.now()) {
    this.#nodeId = nodeId;
    this.#boundMs = boundMs;
    this.#now = now;
  }

  /** Sends the operation, or answers ETIMEDOUT at once for a metadata operation while the node is silent. */
  async relay(operation: RelayOperation, send: Send): Promise<Record<string, unknown>> {
    const silentMs = METADATA_OPS.has(operation.op) ? this.silentForMs() : undefined;
    if (silentMs === undefined) return this.send(operation, send);
    this.#probe(operation.path, send);
    throw new FsError(
      'ETIMEDOUT',
      `${operation.op} ${operation.path}: node ${this.#nodeId} has not answered for ${Math.round(silentMs / 1000)} s ` +
        `(an operation outlived this mount's ${this.#boundMs / 1000} s bound); answered at once until the node answers again`,
    );
  }

  /** Sends it whatever the node's state, noting what comes back. */
  async send(operation: RelayOperation, send: Send): Promise<Record<string, unknown>> {
    const entry = { startedMs: this.#now() };
    if (METADATA_OPS.has(operation.op)) this.#inFlight.add(entry);
    try {
      const result = await send(operation);
      this.#answered();
      return result;
    } catch (error) {
      // ETIMEDOUT (the server's timer, or the server's own silence) and ENOTCONN are no word from the node.
      if (!(error instanceof FsError && (error.errno === 'ETIMEDOUT' || error.errno === 'ENOTCONN'))) this.#answered();
      throw error;
    } finally {
      this.#inFlight.delete(entry);
    }
  }

  /** How long the node has been silent, or undefined while it is not. */
  silentForMs(): number | undefined {
    const now = this.#now();
    if (this.#silentSinceMs === undefined) {
      // The oldest operation sent after the last answer: older ones are slow, but the node answered since.
      for (const { startedMs } of this.#inFlight) {
        if (startedMs <= this.#lastAnswerMs) continue;
        if (now - startedMs >= this.#boundMs - TIMER_SLACK_MS) this.#silentSinceMs = startedMs;
        break;
      }
    }
    return this.#silentSinceMs === undefined ? undefined : now - this.#silentSinceMs;
  }

  #answered(): void {
    this.#lastAnswerMs = this.#now();
    this.#silentSinceMs = undefined;
  }

  #probe(path: string, send: Send): void {
    if (this.#probing) return;
    this.#probing = true;
    void this.send({ op: 'stat', path }, send)
      .catch(() => undefined)
      .finally(() => {
        this.#probing = false;
      });
  }
}
