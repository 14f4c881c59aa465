import { randomUUID } from 'node:crypto';
import type { Logger } from 'pino';
import { FsError, isErrnoName } from '../errors/errno.js';
import type { ControlClient } from '../protocol/control-client.js';
import { ProtocolError } from '../protocol/errors.js';
import { RELAY_PATH_MAX, relayWaitCeilingMs } from '../protocol/relay.js';
import { SchemaError } from '../protocol/schemas.js';
import type { RelayOutcome, RelayPayload } from '../protocol/types.gen.js';

/** How much longer than a relay's own bound the mount waits for the server's answer. */
const REPLY_SLACK_MS = 5000;

/** A refusal with the same reason on the same node is logged again only after this long. */
export const REFUSAL_LOG_EVERY_MS = 60_000;
const REFUSALS_KEPT = 256;

/**
 * Where a mount's relay outcomes worth a line go: a malformed reply's problems, and an EACCES's
 * reason (the server's policy: the project's invoke, read or mount action; or an export's file mode),
 * which reaches the caller as a bare "Permission denied". Refusals are logged at `warn` once a
 * minute per node and reason, so a loop hitting one does not flood the log.
 */
export class RelayLog {
  readonly log: Logger;
  /** When each (node, reason) refusal was last logged; at most REFUSALS_KEPT kept. */
  #refusalsLogged = new Map<string, number>();

  constructor(log: Logger) {
    this.log = log;
  }

  refused(nodeId: string, operation: RelayOperation, reason: string, now = Date.now()): void {
    const key = `${nodeId}\0${reason}`;
    const last = this.#refusalsLogged.get(key);
    if (last !== undefined && now - last < REFUSAL_LOG_EVERY_MS) return;
    this.#refusalsLogged.delete(key);
    if (this.#refusalsLogged.size >= REFUSALS_KEPT) this.#refusalsLogged.delete(this.#refusalsLogged.keys().next().value as string);
    this.#refusalsLogged.set(key, now);
    this.log.warn({ node_id: nodeId, op: operation.op, path: operation.path, errno: 'EACCES', reason }, 'relayed operation refused');
  }
}

/** One operation for the node; a request id is made for it unless it shares one (stage and its invoke). */
export type RelayOperation = Omit<RelayPayload, 'node_id' | 'request_id'> & { request_id?: string };

/**
 * Sends one `control.relay` and turns its outcome into a result or an FsError with the node's
 * errno (SPEC §9). Never retried: at most once. Bounded: the server answers ETIMEDOUT after
 * `timeout_ms` (or its own bound, at most relayWaitCeilingMs); a server silent for REPLY_SLACK_MS
 * longer gets ETIMEDOUT here, a connection that went down ENOTCONN, a malformed reply EIO (its
 * problems listed in `log`, when there is one: the EIO message names only the first). An EACCES's
 * reason is logged too.
 */
export async function relayOnce(client: ControlClient, nodeId: string, operation: RelayOperation, log?: RelayLog): Promise<Record<string, unknown>> {
  // What the node's own mount would answer for such a path; the request would not pass the schema (an EIO).
  for (const path of [operation.path, operation.to]) {
    if (path !== undefined && path.length > RELAY_PATH_MAX)
      throw new FsError('ENAMETOOLONG', `${operation.op} ${path.slice(0, 64)}…: ${path.length} characters, more than the ${RELAY_PATH_MAX} a path may have`);
  }
  let outcome: RelayOutcome;
  try {
    outcome = await client.request<RelayOutcome>(
      'control.relay',
      { node_id: nodeId, request_id: randomUUID(), ...operation },
      relayWaitCeilingMs(operation) + REPLY_SLACK_MS,
    );
  } catch (error) {
    if (error instanceof SchemaError) {
      log?.log.error({ problems: error.problems.map((p) => p.message) }, `bad relay reply from the control server: ${error.message}`);
      throw new FsError('EIO', `${operation.op} ${operation.path}: the control server's reply is malformed: ${error.message}`);
    }
    if (error instanceof ProtocolError && error.code === 'unavailable')
      throw new FsError(client.isOpen ? 'ETIMEDOUT' : 'ENOTCONN', `${operation.op} ${operation.path}: ${error.message}`);
    throw error;
  }
  if (outcome.ok) return outcome.result ?? {};
  const message = outcome.message ?? `${operation.op} ${operation.path} failed on node ${nodeId}`;
  if (outcome.errno === 'EACCES') log?.refused(nodeId, operation, message);
  // A name the adapter knows as an errno still comes out unchanged (errno.ts maps any `code`).
  if (isErrnoName(outcome.errno)) throw new FsError(outcome.errno, message);
  throw Object.assign(new Error(message), { code: outcome.errno ?? 'EIO' });
}
