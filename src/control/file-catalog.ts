import type { Logger } from 'pino';
import { dirname, join } from 'node:path';
import { SerialQueue } from '../async/serial-queue.js';
import type {
  NodeJoinPayload,
  NodeJoinReply,
  NodeServiceUpsertPayload,
  NodeState,
  NodeSummary,
  PublicNode,
  ServiceDelta,
  ServiceDescriptor,
} from '../protocol/types.gen.js';
import { StateJournal } from '../store/state-journal.js';
import { entriesDelta, type ServiceEntry } from './delta.js';
import { upsertReplyBody } from './catalog-event.js';
import type { CatalogStore, NodeRecord } from './catalog-store.js';
import type { CatalogEvent, EventKind, EventLog, EventRecord } from './event-log.js';
import { countNodes, deleteDelta, joinPlan, journalRecord, HEAD_SEQ_KEY, lapsed, noNode, offlinePlan } from './node-record.js';
import { publishedService, refreshPlan, replayed, restoreNodes, secretMatches, summaries, toPublic, upsertPlan } from './node-record.js';
import type { ResolvedService } from './upsert-frame.js';
import { grantRestartGrace } from './restart-grace.js';
import { SeenTimes } from './seen-times.js';

const nodeKey = (nodeId: string): string => `node/${nodeId}`;

/**
 * Every node's catalog, leases and credentials behind one storage interface. The event log is
 * the write-ahead log (SPEC §6): a change that watchers see is durable once its event is, and is
 * applied here in the same step. The journal holds a snapshot: each node's record with the seq
 * it reflects, rewritten for the nodes that changed at each checkpoint (before the event log
 * archives a file) and at close; what is not an event (a join's secret, metadata-only changes) is
 * written to it before the reply, and last-seen times to SeenTimes' journal before they are
 * published. Start-up loads the snapshot and replays the events after it, so what was acknowledged
 * survives a kill -9.
 */
export class FileCatalog implements CatalogStore {
  #nodes = new Map<string, NodeRecord>();
  #journal: StateJournal;
  #events: EventLog;
  /** Nodes changed by events since the last checkpoint. */
  #dirty = new Set<string>();
  #queue = new SerialQueue<string>();
  #seen: SeenTimes;
  readonly leaseTtlMs: number;

  private constructor(journal: StateJournal, events: EventLog, leaseTtlMs: number, seen: SeenTimes) {
    this.#journal = journal;
    this.#events = events;
    this.leaseTtlMs = leaseTtlMs;
    this.#seen = seen;
  }

  static async open(path: string, events: EventLog, options: { leaseTtlMs: number; offlineGraceMs: number; log: Logger }): Promise<FileCatalog> {
    const { journal, restored } = await StateJournal.open(path, { sync: 'always', log: options.log });
    const opened = SeenTimes.open(join(dirname(path), 'last-seen.journal'), options.log);
    const { seen, restore, lastAliveMs } = await opened.catch((error: unknown) => journal.close().then(() => Promise.reject(error as Error)));
    const catalog = new FileCatalog(journal, events, options.leaseTtlMs, seen);
    const { nodes, seqOf, recorded, pending } = restoreNodes(restored.values);
    catalog.#nodes = nodes;
    const closeAndThrow = (error: unknown): Promise<never> => catalog.close().then(() => Promise.reject(error as Error));
    // No seq the journal saw may be handed out again, whatever became of the event log.
    await events.raiseFloor(recorded, 'catalog.journal').catch(closeAndThrow);
    for (const event of events.takeUnarchived()) catalog.#recover(event, seqOf);
    for (const nodeId of pending) await catalog.#announceTornJoin(nodeId, options.log).catch(closeAndThrow);
    restore(catalog.#nodes.values());
    // Each descriptor held once: the journal's copy for compaction and the events read back from disk use the catalog's strings.
    for (const [nodeId, node] of catalog.#nodes)
      if (!catalog.#dirty.has(nodeId)) journal.keepJson(nodeKey(nodeId), journalRecord(node, seqOf.get(nodeId) ?? 0));
    for (const event of events.retained()) {
      const node = catalog.#nodes.get(event.node_id);
      if (node) event.share(new Map(node.services.map((e) => [e.service_id, e])));
    }
    grantRestartGrace(catalog.#nodes.values(), options.offlineGraceMs, lastAliveMs);
    events.setCheckpoint(() => catalog.checkpoint());
    return catalog;
  }

  /** An event the snapshot lacks; a node the journal does not know never finished its join. */
  #recover(event: EventRecord, seqOf: Map<string, number>): void {
    const node = this.#nodes.get(event.node_id);
    if (!node || event.seq <= (seqOf.get(event.node_id) ?? 0)) return;
    seqOf.set(event.node_id, event.seq);
    this.#dirty.add(event.node_id);
    if (event.kind === 'delete') {
      this.#nodes.delete(event.node_id);
      return;
    }
    this.#nodes.set(event.node_id, replayed(node, event));
  }

  /**
   * A join's record journaled whose event a kill -9 cut off (no replayed event followed it): the
   * node is in the catalog, so its `online` event is written now, or no watcher would hear of it.
   */
  async #announceTornJoin(nodeId: string, log: Logger): Promise<void> {
    const node = this.#nodes.get(nodeId);
    if (!node || this.#dirty.has(nodeId) || node.state !== 'online') return;
    const now = Date.now();
    log.warn({ node_id: nodeId }, `catalog: the join of node ${nodeId} was cut off before its event (a kill -9): its online event is written now`);
    await this.#commit(node, 'online', entriesDelta(node.services, node.services, now), now);
  }

  /** The event, then (in the step that makes it durable) the change here. */
  #commit(node: NodeRecord, kind: EventKind, delta: ServiceDelta, now: number): Promise<CatalogEvent> {
    return this.#events.append({ kind, timestamp_ms: now, node, delta, before: this.#nodes.get(node.node_id)?.services ?? [] }, (event) => {
      node.seq = event.seq;
      if (kind === 'delete') this.#nodes.delete(node.node_id);
      else this.#nodes.set(node.node_id, node);
      this.#dirty.add(node.node_id);
    });
  }

  /**
   * Writes the nodes changed since the last checkpoint to the journal; resolves with the seq the
   * journal now reflects. Synchronous up to the writes, so the snapshot is of one moment.
   */
  async checkpoint(): Promise<number> {
    const seq = this.#events.headSeq;
    const ids = [...this.#dirty];
    this.#dirty.clear();
    const writes = ids.map((id) => {
      const node = this.#nodes.get(id);
      return node ? this.#journal.setJson(nodeKey(id), journalRecord(node, seq)) : this.#journal.delete(nodeKey(id));
    });
    if (ids.length > 0) writes.push(this.#journal.set(HEAD_SEQ_KEY, seq));
    try {
      await Promise.all(writes);
    } catch (error) {
      for (const id of ids) this.#dirty.add(id);
      throw error;
    }
    return seq;
  }

  durabilityProblem(): Promise<string | undefined> {
    return this.#journal.durabilityProblem();
  }

  list(): NodeSummary[] {
    return summaries(this.#nodes.values());
  }

  get(nodeId: string, view: 'published' | 'stored' = 'published'): PublicNode {
    return toPublic(this.#require(nodeId), view);
  }

  join(payload: NodeJoinPayload): Promise<NodeJoinReply> {
    return this.#turn(payload.node_id ?? '', async (now) => {
      const existing = this.#nodes.get(payload.node_id ?? '');
      const { next, kind, delta, reply } = joinPlan(payload, existing, now, this.leaseTtlMs);
      if (!kind) return this.#save(next).then(() => reply);
      // All or nothing: the secret is journaled before the event is seen, taken out if either fails (a failed write's value stays for the next).
      const key = nodeKey(next.node_id);
      try {
        await this.#journal.setJson(key, journalRecord(next, this.#events.headSeq, true));
        await this.#commit(next, kind, delta, now);
      } catch (error) {
        await (existing ? this.#journal.setJson(key, journalRecord(existing, this.#events.headSeq)) : this.#journal.delete(key)).catch(() => undefined);
        throw error;
      }
      return reply;
    });
  }

  nodeState(nodeId: string): NodeState | undefined {
    return this.#nodes.get(nodeId)?.state;
  }

  service(nodeId: string, serviceId: string): ServiceDescriptor | undefined {
    return publishedService(this.#nodes.get(nodeId), serviceId);
  }

  storedServices(nodeId: string): readonly ServiceEntry[] | undefined {
    return this.#nodes.get(nodeId)?.services;
  }

  async verifyNode(nodeId: string, secret: string): Promise<boolean> {
    return secretMatches(this.#nodes.get(nodeId), secret);
  }

  /** Never called: this store has one server, whose join closes the old connections itself. */
  onSecretReplaced(): void {}

  async upsert(payload: Omit<NodeServiceUpsertPayload, 'services'>, incoming: readonly ResolvedService[]): Promise<{ delta: ServiceDelta; body: Buffer }> {
    return this.#turnThenSeen(payload.node_id, async (now, seenAt) => {
      const { next, delta, kind, metadataChanged } = upsertPlan(this.#require(payload.node_id), payload, incoming, now, this.leaseTtlMs);
      if (kind) return { delta, body: upsertReplyBody(payload.include, await this.#commit(next, kind, delta, now), next, delta) };
      if (metadataChanged) await this.#save(next);
      else seenAt(next);
      return { delta, body: upsertReplyBody(payload.include, undefined, next, delta) };
    });
  }

  async refresh(nodeId: string): Promise<{ leaseExpiresAtMs: number; cameOnline: boolean }> {
    return this.#turnThenSeen(nodeId, async (now, seenAt) => {
      const { next, kind, delta } = refreshPlan(this.#require(nodeId), now, this.leaseTtlMs);
      if (kind) await this.#commit(next, kind, delta, now);
      else seenAt(next);
      return { leaseExpiresAtMs: next.lease_expires_at_ms, cameOnline: kind !== undefined };
    });
  }

  /** One server holds every tunnel: nothing to record. */
  tunnelOpened(): void {}

  tunnelClosed(nodeId: string, graceMs: number, now = Date.now()): void {
    const node = this.#nodes.get(nodeId);
    if (node && node.state === 'online') node.lease_expires_at_ms = Math.min(node.lease_expires_at_ms, now + graceMs);
  }

  /** Each in its own turn, re-checked there. */
  async expireLeases(): Promise<string[]> {
    const candidates = [...this.#nodes.values()].filter((n) => lapsed(n, Date.now()));
    const expired = await Promise.all(
      candidates.map((candidate) =>
        this.#turn(candidate.node_id, async (now) => {
          const node = this.#nodes.get(candidate.node_id);
          if (!lapsed(node, now)) return undefined;
          const { next, delta } = offlinePlan(node, now);
          await this.#commit(next, 'offline', delta, now);
          return node.node_id;
        }),
      ),
    );
    return expired.filter((nodeId): nodeId is string => nodeId !== undefined);
  }

  delete(nodeId: string): Promise<PublicNode> {
    return this.#turn(nodeId, async (now) => {
      const node = this.#require(nodeId);
      await this.#commit(node, 'delete', deleteDelta(node, now), now);
      await this.#seen.forget(nodeId);
      return toPublic(node);
    });
  }

  count(): { nodes: Record<NodeState, number>; services: Map<string, number> } {
    return countNodes(this.#nodes.values());
  }

  /** A last checkpoint, so the next start has no events to replay. */
  async close(): Promise<void> {
    try {
      await this.checkpoint();
    } finally {
      await Promise.all([this.#journal.close(), this.#seen.close()]);
    }
  }

  /**
   * Mutations of one node run one at a time, each from the state the previous one left: two upserts
   * a node sends without waiting would otherwise both diff against the old catalog, and the second
   * could be dropped as unchanged (a lost update). Different nodes proceed in parallel. The time is
   * taken when the turn comes, so one node's event timestamps follow its seq order.
   */
  #turn<T>(nodeId: string, task: (now: number) => Promise<T>): Promise<T> {
    return this.#queue.run(nodeId, () => task(Date.now()));
  }

  #require(nodeId: string): NodeRecord {
    const node = this.#nodes.get(nodeId);
    if (!node) throw noNode(nodeId);
    return node;
  }

  /** A turn that may mark `next` seen: its lease at once; its last-seen time once on disk (never older after a restart), awaited after the turn. */
  async #turnThenSeen<T>(nodeId: string, task: (now: number, seenAt: (next: NodeRecord) => void) => Promise<T>): Promise<T> {
    let seen: Promise<void> | undefined;
    const seenAt = (next: NodeRecord): void => {
      this.#nodes.set(next.node_id, { ...next, last_seen_ms: this.#require(next.node_id).last_seen_ms });
      seen = this.#seen.record(next.node_id, next.last_seen_ms).then(() => {
        const node = this.#nodes.get(next.node_id); // replaced or gone meanwhile: only the time changes
        if (node) node.last_seen_ms = Math.max(node.last_seen_ms, next.last_seen_ms);
      });
    };
    const done = await this.#turn(nodeId, (now) => task(now, seenAt));
    await seen;
    return done;
  }

  /** What is not an event goes to the journal at once: the whole record, as of the current head. */
  async #save(node: NodeRecord): Promise<void> {
    this.#nodes.set(node.node_id, node);
    this.#dirty.delete(node.node_id);
    await this.#journal.setJson(nodeKey(node.node_id), journalRecord(node, this.#events.headSeq));
  }
}
