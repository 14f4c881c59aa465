import { randomUUID } from 'node:crypto';
import { FsError } from '../errors/errno.js';
import type { ControlClient } from '../protocol/control-client.js';
import { ProtocolError } from '../protocol/errors.js';
import { invokeWaitMs, RELAY_CHUNK_BYTES } from '../protocol/relay.js';
import { SERVICE_FILES } from '../protocol/service-files.js';
import type { PublicNode, ServiceRuntime } from '../protocol/types.gen.js';
import { relayOnce, type RelayOperation } from './relay-call.js';
import type { Relay } from './remote-node.js';

/** Chunks of one large payload in flight at once. */
const STAGE_WINDOW = 8;

/** The outcome (when wanted) and the documents the node sent with it (when asked for). */
export interface Invoked {
  outcome: Buffer;
  documents: Record<string, Record<string, unknown>>;
}

export interface InvokeRequest {
  /** The outcome document a read of the same descriptor returns (else an empty buffer). */
  outcome: boolean;
  /** Also result.json and status.json as the invocation left them. */
  documents: boolean;
  /**
   * How long the node may take (invokeWaitMs of the service's runtime); undefined for a requester
   * that cannot read the descriptor: the server then derives that bound from its catalog.
   */
  timeoutMs: number | undefined;
}

/**
 * One commit of `control/invoke.json` on the node (SPEC §9): one relayed `invoke` with a new request
 * id (a payload above one chunk first goes as `stage` chunks under that id), which the node commits
 * through the service's own target: admission, EFBIG, the schema, the run, at most once. An outcome
 * longer than one chunk is read on from the node's handle on it.
 */
export async function relayInvoke(relay: Relay, path: string, payload: Buffer, request: InvokeRequest): Promise<Invoked> {
  const requestId = randomUUID();
  const chunk = (offset: number): RelayOperation => ({
    path,
    request_id: requestId,
    size: payload.length,
    offset,
    data: payload.subarray(offset, offset + RELAY_CHUNK_BYTES).toString('base64'),
    op: 'stage',
  });
  const lastAt = payload.length === 0 ? 0 : Math.floor((payload.length - 1) / RELAY_CHUNK_BYTES) * RELAY_CHUNK_BYTES;
  for (let at = 0; at < lastAt; at += STAGE_WINDOW * RELAY_CHUNK_BYTES) {
    const window: Array<Promise<unknown>> = [];
    for (let offset = at; offset < Math.min(lastAt, at + STAGE_WINDOW * RELAY_CHUNK_BYTES); offset += RELAY_CHUNK_BYTES) window.push(relay(chunk(offset)));
    await Promise.all(window);
  }
  const invoke: RelayOperation = { ...chunk(lastAt), op: 'invoke', outcome: request.outcome, documents: request.documents };
  const r = await relay(request.timeoutMs === undefined ? invoke : { ...invoke, timeout_ms: request.timeoutMs });
  const documents = (r.documents ?? {}) as Invoked['documents'];
  if (!request.outcome) return { outcome: Buffer.alloc(0), documents };
  const parts = [Buffer.from(String(r.data ?? ''), 'base64')];
  if (r.fh === undefined) return { outcome: parts[0] as Buffer, documents };
  // An outcome longer than one chunk: the rest from the node's handle on it, then released.
  const fh = Number(r.fh);
  try {
    for (let at = (parts[0] as Buffer).length; at < Number(r.size);) {
      const next = Buffer.from(String((await relay({ op: 'read', path, fh, offset: at, length: RELAY_CHUNK_BYTES })).data), 'base64');
      if (next.length === 0) break;
      parts.push(next);
      at += next.length;
    }
  } finally {
    void relay({ op: 'release', path, fh }).catch(() => undefined);
  }
  return { outcome: Buffer.concat(parts), documents };
}

const INVOKE_FILE = (SERVICE_FILES.find((f) => f.kind === 'invoke') as { path: string }).path;

/**
 * One invocation of a service of a node through the control server, without a mount (`acheron
 * invoke --node` with a control URL): the relay WorldFS sends for a commit of the service's
 * `control/invoke.json`, bounded as there by the service's descriptor in the catalog, and its outcome
 * document. A node or service the session does not see is ENOENT (SPEC §8: hidden means absent); the
 * node's own refusals come back with their errno (relayOnce). A session that may invoke but not
 * `read` (`readsCatalog` false) cannot get the descriptor, where node_get would answer `no node`:
 * the relay goes without it and without `timeout_ms`, and the server says what is absent (a node
 * outside the project, a service not there or hidden) and bounds the wait by the same invokeWaitMs
 * of the descriptor in its catalog (relay-hub.ts `relayWaitMs`): a node that never answers is
 * ETIMEDOUT then, as through a mount, not after the longest wait a requester may state.
 */
export async function invokeOnNode(
  client: ControlClient,
  nodeId: string,
  serviceId: string,
  payload: Buffer,
  options: { readsCatalog: boolean } = { readsCatalog: true },
): Promise<Buffer> {
  const relay: Relay = (operation) => relayOnce(client, nodeId, operation);
  const invoked = await relayInvoke(relay, `/services/${serviceId}/${INVOKE_FILE}`, payload, {
    outcome: true,
    documents: false,
    timeoutMs: options.readsCatalog ? invokeWaitMs(await descriptorRuntime(client, nodeId, serviceId)) : undefined,
  });
  return invoked.outcome;
}

/** The runtime of the service's descriptor in the catalog; a node or service not there (or hidden) is ENOENT. */
async function descriptorRuntime(client: ControlClient, nodeId: string, serviceId: string): Promise<ServiceRuntime> {
  const node = await client.request<PublicNode>('control.node_get', { node_id: nodeId }).catch((error: unknown) => {
    if (error instanceof ProtocolError && error.code === 'not_found') throw new FsError('ENOENT', error.message);
    throw error;
  });
  const service = node.services.find((s) => s.service_id === serviceId);
  if (!service) throw new FsError('ENOENT', `no service ${serviceId} on node ${nodeId}`);
  return service.runtime;
}
