import { offlineView } from '../protocol/catalog-event.js';
import type { CatalogEventPayload, EventKind, NodeLabels, NodePlatform, ServiceDelta, ServiceDescriptor } from '../protocol/types.gen.js';
import { jsonBytes } from './delta.js';

/** A descriptor as the catalog holds it: its JSON bytes, the one copy that the catalog, the journal and the events share. */
export interface StoredService {
  service_id: string;
  json: Buffer;
}

/**
 * What an event says of its node: the catalog's record of that moment, shared, never copied
 * (records are replaced, not changed, when the catalog changes).
 */
export interface EventNode {
  node_id: string;
  node_name: string;
  platform: NodePlatform;
  labels: NodeLabels;
  state: 'online' | 'offline';
  services: readonly StoredService[];
}

/** What an event is made of before it gets its seq. */
export interface EventSource {
  kind: EventKind;
  timestamp_ms: number;
  node: EventNode;
  delta: ServiceDelta;
  /** The node's services before the change, when known (what SPEC §8 showed a user session before it, sight.ts). */
  before?: readonly StoredService[];
}

/**
 * One catalog change (SPEC §6 Events) as the log keeps and sends it. It holds its node's record and
 * delta, whose descriptors are the catalog's own strings, and serializes each shape only when
 * asked: the full shape (the log line, the upsert reply, watches without `include`) and the delta
 * shape (`include: "delta"`). Each is built once and kept while anyone holds it (a WeakRef), so the
 * log line, the reply and every watcher's frame of a fan-out share its bytes, and the replay ring
 * holds no serialized copy of a catalog; a replay after the bytes were collected builds them again,
 * the same bytes from the same strings.
 */
export class CatalogEvent {
  readonly seq: number;
  readonly kind: EventKind;
  readonly timestamp_ms: number;
  readonly delta: ServiceDelta;
  readonly before: readonly StoredService[] | undefined;
  /**
   * The bytes of the descriptors this event added or changed: what holding it costs beyond the
   * catalog (its other descriptors are the catalog's, or an older event's, shared). Counted once:
   * the replay ring adds it when the event comes and takes it off when the event goes.
   */
  readonly changedBytes: number;
  #node: EventNode;
  /** Each shape's bytes, while anyone holds them. */
  #bytes: { full?: WeakRef<Buffer>; delta?: WeakRef<Buffer> } = {};

  constructor(seq: number, source: EventSource) {
    this.seq = seq;
    this.kind = source.kind;
    this.timestamp_ms = source.timestamp_ms;
    this.#node = source.node;
    this.delta = source.delta;
    this.before = source.before;
    this.changedBytes = bytesChanged(source.node, source.delta);
  }

  /**
   * An event read back from the log. `interned` (one map for a whole read) gives equal descriptors
   * one string, so the events of one node share what they did not change. `before`: the services
   * of the node's previous event in the log, when it has one.
   */
  static fromRecord(record: CatalogEventPayload, interned: Map<string, Buffer>, before?: readonly ServiceDescriptor[]): CatalogEvent {
    const { seq, kind, timestamp_ms: timestampMs, node_id: nodeId, node_name: nodeName, platform, labels, services, service_delta: delta } = record;
    return new CatalogEvent(seq, {
      kind,
      timestamp_ms: timestampMs,
      delta,
      node: {
        node_id: nodeId,
        node_name: nodeName,
        platform,
        labels,
        state: kind === 'offline' ? 'offline' : 'online',
        services: internedServices(services, interned),
      },
      ...(before === undefined ? {} : { before: internedServices(before, interned) }),
    });
  }

  get node(): EventNode {
    return this.#node;
  }

  get node_id(): string {
    return this.#node.node_id;
  }

  /** `"seq":…,"kind":…,"timestamp_ms":…,`: what an event adds in front of the upsert reply's members. */
  get head(): Buffer {
    return eventHead(this.seq, this.kind, this.timestamp_ms);
  }

  /** The full shape's members from `node_id` on and the closing brace (= the upsert reply's payload). */
  get body(): Buffer {
    return this.#shape('full', fullBody);
  }

  /** The delta shape's members from `node_id` on and the closing brace. */
  get deltaBody(): Buffer {
    return this.#shape('delta', deltaBody);
  }

  #shape(shape: 'full' | 'delta', build: (node: EventNode, delta: ServiceDelta) => Buffer): Buffer {
    const cached = this.#bytes[shape]?.deref();
    if (cached) return cached;
    const bytes = build(this.#node, this.delta);
    this.#bytes[shape] = new WeakRef(bytes);
    return bytes;
  }

  /**
   * Points this event's descriptors at `current`'s strings where the JSON is the same: after a
   * restart the events read from disk and the catalog would otherwise each hold a copy.
   */
  share(current: ReadonlyMap<string, StoredService>): void {
    const services = this.#node.services.map((s) => {
      const same = current.get(s.service_id);
      return same !== undefined && same.json.equals(s.json) ? same : s;
    });
    this.#node = { ...this.#node, services };
  }
}

/** Descriptors read back as stored services: equal JSON (one map for a whole read) gets one buffer. */
function internedServices(services: readonly ServiceDescriptor[], interned: Map<string, Buffer>): StoredService[] {
  const texts = services.map((s) => JSON.stringify(s));
  const fresh = jsonBytes(texts.filter((text) => !interned.has(text)));
  let next = 0;
  return services.map((s, index) => {
    const text = texts[index] as string;
    let json = interned.get(text);
    if (json === undefined) {
      json = fresh[next++] as Buffer;
      interned.set(text, json);
    }
    return { service_id: s.service_id, json };
  });
}

/** `"seq":…,"kind":…,"timestamp_ms":…,`. */
export function eventHead(seq: number, kind: EventKind, timestampMs: number): Buffer {
  return Buffer.from(`"seq":${seq},"kind":${JSON.stringify(kind)},"timestamp_ms":${timestampMs},`);
}

const SERVICES = Buffer.from('"services":[');
const CHANGED_SERVICES = Buffer.from('"changed_services":[');
const COMMA = Buffer.from(',');
const DELTA = Buffer.from('],"service_delta":');
const CLOSE = Buffer.from('}');

/** `"node_id":…,"node_name":…,"platform":…,"labels":…,`. */
function nodeMeta(node: EventNode): Buffer {
  return Buffer.from(
    `"node_id":${JSON.stringify(node.node_id)},"node_name":${JSON.stringify(node.node_name)},"platform":${JSON.stringify(node.platform)},"labels":${JSON.stringify(node.labels)},`,
  );
}

/** `open`, the descriptors' bytes comma-separated, then the delta and the closing brace: copied once, into the body. */
function withDescriptors(node: EventNode, open: Buffer, descriptors: readonly Buffer[], delta: ServiceDelta): Buffer {
  const parts = [nodeMeta(node), open];
  descriptors.forEach((json, index) => (index === 0 ? parts.push(json) : parts.push(COMMA, json)));
  parts.push(DELTA, Buffer.from(JSON.stringify(delta)), CLOSE);
  return Buffer.concat(parts);
}

/**
 * The upsert reply's members (= the full event payload's, SPEC §6) and the closing brace, from the
 * stored descriptors' bytes instead of serializing the catalog again; an offline node's services
 * are shown offline.
 */
export function fullBody(node: EventNode, delta: ServiceDelta): Buffer {
  const descriptors =
    node.state === 'online'
      ? node.services.map((s) => s.json)
      : node.services.map((s) => Buffer.from(JSON.stringify(offlineView(JSON.parse(s.json.toString()) as ServiceDescriptor))));
  return withDescriptors(node, SERVICES, descriptors, delta);
}

/**
 * The upsert reply's payload (SPEC §6) in the shape the upsert asked for (`include`): the event's
 * own bytes when the upsert made one, else built from the node's record and the unchanged delta.
 */
export function upsertReplyBody(include: 'delta' | undefined, event: CatalogEvent | undefined, node: EventNode, delta: ServiceDelta): Buffer {
  if (event) return include === 'delta' ? event.deltaBody : event.body;
  return (include === 'delta' ? deltaBody : fullBody)(node, delta);
}

/** The delta shape: the descriptors of the added, then the updated services, as stored. */
export function deltaBody(node: EventNode, delta: ServiceDelta): Buffer {
  return withDescriptors(node, CHANGED_SERVICES, changedDescriptors(node, delta), delta);
}

function bytesChanged(node: EventNode, delta: ServiceDelta): number {
  return changedDescriptors(node, delta).reduce((sum, json) => sum + json.length, 0);
}

/** The stored descriptors of the services the delta added, then of those it updated. */
function changedDescriptors(node: EventNode, delta: ServiceDelta): Buffer[] {
  const byId = new Map(node.services.map((s) => [s.service_id, s.json]));
  return [...delta.added, ...delta.updated].map((e) => byId.get(e.service_id)).filter((json): json is Buffer => json !== undefined);
}
