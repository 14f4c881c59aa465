// The fleet as this session may see it, kept current: every node (`control.node_list`, then one
// `control.node_get {view: "stored"}` each: its services, their hashes and the seq the read
// reflects) and a delta watch (`include: "delta"`) whose events apply on top (docs/control-protocol.md,
// "Events and watches"). Lease and last-seen times are not events: the list is read again every
// 10 s. A session that may not watch (users, unless the server allows user watches) reads the
// list every 3 s instead and re-reads each node whose seq moved. After a reconnect the watch
// resumes with since_seq; a `resync_required` starts over. The events seen (replayed too) and each
// node's online/offline changes are kept for the charts.
import { on, request, watch, unwatch } from './conn.js';

const LIST_EVERY_MS = 10_000;
const POLL_EVERY_MS = 3_000;
/** The charts' window: events and transitions older than this are dropped. */
export const HISTORY_MS = 15 * 60_000;

export const fleet = {
  /** node_id → node: its summary fields, `services` (Map id → descriptor), `hashes`, `seq`. */
  nodes: new Map(),
  /** `loading`, `watch` (live from events), `poll` (list re-read), `refused` (the session may not list). */
  mode: 'idle',
  /** Why it polls, or why it shows nothing. */
  note: '',
  error: null,
  watchId: null,
  /** The highest event seq applied or skipped: where a resumed watch starts. */
  lastSeq: 0,
  /** `{seq, timestamp_ms, node_id, kind}` of every event seen in the window, oldest first. */
  events: [],
  /** node_id → `[{at_ms, state}]`: when it turned online or offline (from events, or from the list when polling). */
  transitions: new Map(),
  /** When the first list came: the charts start there. */
  since_ms: null,
};

const listeners = new Set();
let timer = null;
let notifyQueued = false;

/** Called (batched) after every change of the fleet. */
export function onFleetChange(listener) {
  listeners.add(listener);
}

function changed() {
  if (notifyQueued) return;
  notifyQueued = true;
  setTimeout(() => {
    notifyQueued = false;
    for (const listener of listeners) listener();
  }, 30);
}

/** What the console shows for a service: its node offline, disabled, or its own state. */
export function serviceState(node, service) {
  if (node.state === 'offline') return 'offline';
  if (service.runtime?.supervision_status?.enabled === false) return 'disabled';
  return service.state ?? 'online';
}

/** Executable services carry their live state: only they have files to act on. */
export const actionable = (service) => Boolean(service.runtime?.supervision_status);

function transition(nodeId, atMs, state) {
  const list = fleet.transitions.get(nodeId) ?? [];
  if (list.at(-1)?.state === state) return;
  // Replayed events may come after a list read: keep the list in time order.
  list.push({ at_ms: atMs, state });
  list.sort((a, b) => a.at_ms - b.at_ms);
  fleet.transitions.set(nodeId, list);
}

function prune() {
  const horizon = Date.now() - HISTORY_MS;
  while (fleet.events.length && fleet.events[0].timestamp_ms < horizon) fleet.events.shift();
}

// ---- reading nodes ---------------------------------------------------------------------------

function blank(nodeId) {
  return {
    node_id: nodeId,
    node_name: nodeId,
    labels: {},
    platform: {},
    state: 'online',
    seq: -1,
    services: new Map(),
    hashes: new Map(),
    loading: false,
    queue: [],
  };
}

/** Reads a node whole (the base its events apply to), then the events that came meanwhile. */
async function readNode(node) {
  node.loading = true;
  let doc;
  try {
    doc = await request('control.node_get', { node_id: node.node_id, view: 'stored' });
  } catch (error) {
    node.loading = false;
    if (error.code === 'not_found') {
      fleet.nodes.delete(node.node_id);
      changed();
    } else node.error = error;
    return;
  }
  if (fleet.nodes.get(node.node_id) !== node) return;
  const { services, service_hashes: hashes, ...meta } = doc;
  Object.assign(node, meta, { loading: false, error: null });
  node.services = new Map(services.map((s) => [s.service_id, s]));
  node.hashes = new Map(Object.entries(hashes ?? {}));
  transition(node.node_id, Date.now(), node.state);
  const queued = node.queue.splice(0);
  for (const event of queued) applyEvent(event);
  changed();
}

/** One node_list: summaries refreshed, new nodes read, nodes whose seq moved read again, gone ones dropped. */
async function readList() {
  let list;
  try {
    list = (await request('control.node_list')).nodes;
  } catch (error) {
    if (error.code === 'unavailable') return;
    // Asking again changes nothing until the session does (a project attached: reloadFleet).
    clearInterval(timer);
    fleet.mode = 'refused';
    fleet.error = error;
    fleet.nodes.clear();
    changed();
    return;
  }
  fleet.error = null;
  fleet.since_ms ??= Date.now();
  const seen = new Set();
  const reads = [];
  for (const summary of list) {
    seen.add(summary.node_id);
    let node = fleet.nodes.get(summary.node_id);
    if (!node) {
      node = blank(summary.node_id);
      fleet.nodes.set(summary.node_id, node);
    }
    if (node.seq >= 0 && node.state !== summary.state) transition(node.node_id, Date.now(), summary.state);
    const { service_count: _count, seq, ...meta } = summary;
    Object.assign(node, meta);
    if (!node.loading && seq > node.seq) reads.push(readNode(node));
  }
  for (const nodeId of [...fleet.nodes.keys()]) if (!seen.has(nodeId) && !fleet.nodes.get(nodeId).loading) fleet.nodes.delete(nodeId);
  changed();
  await Promise.all(reads);
}

// ---- events ----------------------------------------------------------------------------------

function record(event) {
  if (fleet.events.some((e) => e.seq === event.seq)) return;
  fleet.events.push({ seq: event.seq, timestamp_ms: event.timestamp_ms, node_id: event.node_id, kind: event.kind });
  fleet.events.sort((a, b) => a.seq - b.seq);
  if (event.kind === 'offline') transition(event.node_id, event.timestamp_ms, 'offline');
  else if (event.kind === 'online' || event.kind === 'upsert') transition(event.node_id, event.timestamp_ms, 'online');
  else if (event.kind === 'delete') transition(event.node_id, event.timestamp_ms, 'deleted');
  prune();
}

/**
 * Applies one delta event to its node: skipped when the node's read already has it (seq), queued
 * while the read is on its way, and a reason to read the node again when it does not fit what is
 * held (an updated or removed service's hash differs, an added one is there already).
 */
function applyEvent(event) {
  fleet.lastSeq = Math.max(fleet.lastSeq, event.seq);
  let node = fleet.nodes.get(event.node_id);
  if (event.kind === 'delete') {
    if (node && event.seq > node.seq) fleet.nodes.delete(event.node_id);
    return changed();
  }
  if (!node) {
    node = blank(event.node_id);
    fleet.nodes.set(event.node_id, node);
    node.queue.push(event);
    void readNode(node);
    return changed();
  }
  if (node.loading) return void node.queue.push(event);
  if (event.seq <= node.seq) return;
  const delta = event.service_delta ?? {};
  const fits =
    (delta.updated ?? []).every((e) => node.hashes.get(e.service_id) === e.previous_hash) &&
    (delta.removed ?? []).every((e) => node.hashes.get(e.service_id) === e.hash) &&
    (delta.added ?? []).every((e) => !node.services.has(e.service_id));
  if (!fits) {
    node.queue.push(event);
    void readNode(node);
    return;
  }
  const descriptors = new Map((event.changed_services ?? []).map((s) => [s.service_id, s]));
  for (const e of [...(delta.added ?? []), ...(delta.updated ?? [])]) {
    const service = descriptors.get(e.service_id);
    if (service) node.services.set(e.service_id, service);
    node.hashes.set(e.service_id, e.hash);
  }
  for (const e of delta.removed ?? []) {
    node.services.delete(e.service_id);
    node.hashes.delete(e.service_id);
  }
  for (const key of ['node_name', 'platform', 'labels']) if (event[key] !== undefined) node[key] = event[key];
  if (event.kind === 'offline') node.state = 'offline';
  else {
    node.state = 'online';
    node.last_seen_ms = Math.max(node.last_seen_ms ?? 0, event.timestamp_ms);
  }
  node.seq = event.seq;
  changed();
}

const handlers = {
  event(event) {
    record(event);
    applyEvent(event);
  },
  progress(p) {
    fleet.lastSeq = Math.max(fleet.lastSeq, p.head_seq);
  },
  ended(error, disconnected) {
    fleet.watchId = null;
    // A dropped connection resumes on `ready`; a watch the server ended starts over.
    if (!disconnected) void load(false, `the watch ended: ${error.code}: ${error.message}`);
  },
};

async function startWatch(payload) {
  const ack = await watch({ include: 'delta', ...payload }, handlers);
  fleet.watchId = ack.watch_id;
  fleet.lastSeq = Math.max(fleet.lastSeq, ack.head_seq);
  fleet.mode = 'watch';
  fleet.note = '';
}

function schedule(everyMs) {
  clearInterval(timer);
  timer = setInterval(() => void readList(), everyMs);
}

/**
 * (Re)loads the fleet: a resumed watch after a reconnect when it had one, else a fresh watch (the
 * last 1000 events replayed, for the charts), the list and every node; polling when watches are
 * refused.
 */
async function load(reconnected, why = '') {
  clearInterval(timer);
  if (fleet.watchId) await unwatch(fleet.watchId).catch(() => undefined);
  fleet.watchId = null;
  if (reconnected && fleet.mode === 'watch') {
    try {
      await startWatch({ since_seq: fleet.lastSeq });
      schedule(LIST_EVERY_MS);
      return readList();
    } catch (error) {
      why = `could not resume after seq ${fleet.lastSeq}: ${error.code}: ${error.message}`;
    }
  }
  fleet.mode = 'loading';
  fleet.note = why;
  fleet.nodes.clear();
  changed();
  try {
    await startWatch({ replay_limit: 1000 });
    if (why) fleet.note = `started over (${why})`;
  } catch (error) {
    fleet.mode = 'poll';
    fleet.note = `no watch for this session (${error.code}: ${error.message}): the list is read every ${POLL_EVERY_MS / 1000} s`;
  }
  schedule(fleet.mode === 'watch' ? LIST_EVERY_MS : POLL_EVERY_MS);
  await readList();
}

/** Reads everything again (a new project session). */
export const reloadFleet = () => load(false);

export function startFleet() {
  on('ready', (reconnected) => void load(reconnected));
  on('down', () => {
    clearInterval(timer);
    changed();
  });
}
