// The event stream view (SPEC §10): a catalog watch of delta events (`include: "delta"`), its
// status, its events and their deltas, a project session's preview, and a diff of any two events,
// whose per-node views it rebuilds from the deltas and one read of each node. A watch cut by a lost
// connection resumes with since_seq (its last seq) once the console is connected again.
import { attachProject as attach, conn, on, request, unwatch as endWatch, watch as startWatch } from './conn.js';
import { $, download, el, isoTime, route, show, time } from './dom.js';
import { reloadFleet } from './fleet.js';
import { pointer } from './schema-check.js';

/** The list is bounded; older events leave it (and the picks) first. */
const MAX_EVENTS = 1000;
const ACTIONS = ['read', 'observe', 'invoke', 'mount', 'admin'];

const state = {
  /** The current watch: the ack plus what the stream said since; `ended` once it is over. */
  watch: null,
  /** Event payloads of the current (or last) watch, oldest first. */
  events: [],
  dropped: 0,
  selected: null,
  /** Seqs of the events picked for the diff, at most two, in picking order. */
  picks: [],
  /**
   * Per node of the current watch, one read (`control.node_get {view: "stored"}`) made when its
   * first event came: `{seq, services: Map(id → {service, hash})}`, `{error}` when refused, or
   * `{pending: true}`. With the events it is what the per-node views are built from (viewAt).
   */
  bases: new Map(),
};

function deltaOf(event) {
  const d = event.service_delta ?? {};
  return { added: d.added ?? [], updated: d.updated ?? [], removed: d.removed ?? [] };
}

function deltaSummary(event) {
  const d = deltaOf(event);
  return `+${d.added.length} ~${d.updated.length} -${d.removed.length}`;
}

/** The node's fs/ exports in the console's own browser (through the relay). */
function fsLink(nodeId) {
  return el('a', { class: 'fs-link', href: route('fs', nodeId, ''), 'data-node': nodeId, title: `${nodeId}/fs/ through the relay` }, `${nodeId}/fs`);
}

// ---- project session -------------------------------------------------------------------------

/** Project scope: attaches the session (remembered for reconnects), previews it, and reloads the fleet. */
async function attachProject(submit) {
  submit.preventDefault();
  const preview = $('project-preview');
  preview.replaceChildren(el('p', { class: 'muted' }, 'attaching…'));
  let reply;
  try {
    reply = await attach($('project-id').value.trim(), $('project-token').value);
  } catch (error) {
    preview.replaceChildren(el('p', { class: 'error', 'data-code': error.code }, `${error.code}: ${error.message}`));
    return;
  }
  $('project-token').value = '';
  void reloadFleet();
  // Catalog facts for the project's nodes, when this session may read them.
  let known = new Map();
  let listNote = null;
  if (reply.actions?.read === 'allowed') {
    try {
      known = new Map((await request('control.node_list')).nodes.map((n) => [n.node_id, n]));
    } catch (error) {
      listNote = `node_list: ${error.code}: ${error.message}`;
    }
  } else listNote = `read: ${reply.actions?.read}`;
  preview.replaceChildren(
    el(
      'p',
      {},
      'Project ',
      el('strong', { class: 'project-id' }, reply.project_id),
      ` · project token ${reply.has_project_token ? 'presented' : 'not presented'} · seen as ${conn.principal}`,
    ),
    el('h3', {}, 'Nodes this session sees'),
    reply.nodes.length === 0
      ? el('p', { class: 'muted' }, listNote === null ? 'none: the project mounts no node' : `not shown (${listNote})`)
      : el(
          'ul',
          { class: 'project-nodes' },
          reply.nodes.map((nodeId) => {
            const node = known.get(nodeId);
            const facts = node ? `${node.state}, ${node.service_count ?? 0} services` : (listNote ?? 'not in the catalog');
            return el('li', { 'data-node': nodeId }, el('code', {}, nodeId), ` (${facts}) `, fsLink(nodeId));
          }),
        ),
    el('h3', {}, 'Actions'),
    el(
      'table',
      { class: 'actions' },
      el(
        'tbody',
        {},
        ACTIONS.map((action) => {
          const verdict = reply.actions?.[action] ?? 'unknown';
          return el(
            'tr',
            { 'data-action': action, class: verdict === 'allowed' ? 'allowed' : 'refused' },
            el('th', {}, action),
            el('td', { class: 'verdict' }, verdict),
          );
        }),
      ),
    ),
  );
}

// ---- watch -----------------------------------------------------------------------------------

/** Policy hints for a refused or ended watch (SPEC §8): what to change, and where. */
function hintsFor(error) {
  const message = error.message ?? '';
  const hints = [];
  if (message.includes('ACHERON_NODE_SERVICE_WATCH_ALLOW_USER'))
    hints.push('User watches are off on this server: start `acheron control` with ACHERON_NODE_SERVICE_WATCH_ALLOW_USER=true, or use an admin token.');
  if (message.includes('ACHERON_NODE_SERVICE_WATCH_ALLOW_ADMIN'))
    hints.push('Admin watches are off on this server (ACHERON_NODE_SERVICE_WATCH_ALLOW_ADMIN=false).');
  if (/project session|attach a session/.test(message))
    hints.push('Attach a project session first (Project scope, above): a user watch sees only the nodes its project mounts.');
  // A watch needs observe, and read for the catalog metadata its events carry.
  const action = /project \S+: (observe|read) /.exec(message)?.[1];
  if (action) {
    if (message.includes('project token')) hints.push(`The project's ${action} mode is \`token\`: attach the session again with the project token.`);
    else if (message.includes('admins only')) hints.push(`The project's ${action} mode is \`admin\`: only admin tokens may watch it.`);
    else if (message.includes('denied'))
      hints.push(
        `The project's ${action} mode is \`deny\` (for this agent when one is named): an admin changes access_policy with \`acheron project upsert\`.`,
      );
  }
  if (error.code === 'resync_required')
    hints.push('The watch fell behind or since_seq is older than the history: Apply again to start from the replay window.');
  if (error.code === 'invalid_payload' && error.field) hints.push(`Check ${error.field}.`);
  if (error.code === 'unavailable') hints.push('Not connected: the console reconnects by itself and resumes the watch; or Apply again.');
  for (const needed of ['observe', 'read']) {
    const verdict = conn.attach?.actions?.[needed];
    if (verdict && verdict !== 'allowed') hints.push(`The attached session's ${needed} action: ${verdict}`);
  }
  if (error.code === 'forbidden' && hints.length === 0)
    hints.push('Watches are for admins, and for users with a project session whose observe and read actions are allowed (docs/control-protocol.md, Policy).');
  return hints;
}

function showRefusal(error, title) {
  const box = $('watch-refusal');
  box.replaceChildren(
    el('p', {}, el('strong', {}, title), ': ', el('code', { class: 'code' }, error.code), ' ', el('span', { class: 'reason' }, error.message)),
    el(
      'ul',
      { class: 'hints' },
      hintsFor(error).map((hint) => el('li', {}, hint)),
    ),
  );
  box.dataset.code = error.code;
  show(box, true);
}

/** The pushes of one watch of this view; frames of a watch it replaced no longer reach it. */
function handlersOf(watch) {
  return {
    event: (event) => state.watch === watch && addEvent(watch, event),
    synced(payload) {
      watch.synced = true;
      watch.head_seq = Math.max(watch.head_seq, payload.head_seq);
      renderWatch();
    },
    progress(payload) {
      watch.progress = { head_seq: payload.head_seq, at_ms: Date.now() };
      watch.head_seq = Math.max(watch.head_seq, payload.head_seq);
      renderWatch();
    },
    ended(error, disconnected) {
      if (watch.ended) return;
      // A lost connection: resumed from head_seq when the console is connected again.
      watch.ended = disconnected ? 'connection lost' : error.code;
      watch.resumable = disconnected;
      renderWatch();
      if (!disconnected) showRefusal(error, 'The watch ended');
    },
  };
}

/** Starts a watch: `{node_id?, replay_limit? | since_seq}` plus the delta shape. */
async function watchWith(filter, resumedFrom) {
  const watch = { synced: false, progress: null, received: 0, ended: null, resumed_from: resumedFrom };
  try {
    const ack = await startWatch({ ...filter, include: 'delta' }, handlersOf(watch));
    Object.assign(watch, ack, { filter });
    state.watch = watch;
  } catch (error) {
    showRefusal(error, resumedFrom ? `Resuming after seq ${resumedFrom.head_seq} failed` : 'Watch refused');
  }
  renderWatch();
}

async function applyWatch(submit) {
  submit.preventDefault();
  show($('watch-refusal'), false);
  const old = state.watch;
  // Ended before the unwatch is sent, so its frames still in flight are ignored.
  if (old && !old.ended) {
    old.ended = 'unwatched';
    await endWatch(old.watch_id).catch(() => undefined);
  }
  state.watch = null;
  clearEvents();
  renderWatch();
  const filter = {};
  const nodeId = $('watch-node').value.trim();
  const replay = $('watch-replay').value.trim();
  if (nodeId) filter.node_id = nodeId;
  if (replay !== '') filter.replay_limit = Number(replay);
  await watchWith(filter);
}

/** After a reconnect: the watch the connection cut goes on after the last seq it had, keeping its events. */
async function resume() {
  const old = state.watch;
  if (!old?.resumable) return;
  old.resumable = false;
  const { replay_limit: _limit, ...filter } = old.filter;
  await watchWith({ ...filter, since_seq: old.head_seq }, { watch_id: old.watch_id, head_seq: old.head_seq });
}

async function unwatch() {
  const watch = state.watch;
  if (!watch || watch.ended) return;
  watch.ended = 'unwatched';
  renderWatch();
  try {
    await endWatch(watch.watch_id);
  } catch (error) {
    showRefusal(error, 'Unwatch failed');
  }
}

function renderWatch() {
  const watch = state.watch;
  const rows = watch
    ? [
        ['watch_id', watch.watch_id],
        ['state', watch.ended ? `ended (${watch.ended})` : 'live'],
        ['node_id', watch.node_id ?? 'all nodes'],
        ['replay_limit', watch.replay_limit],
        ['replayed', watch.replayed],
        ['head_seq', watch.head_seq],
        ['synced', watch.synced ? 'yes' : 'no'],
        ['last progress', watch.progress ? `${time(watch.progress.at_ms)} (head_seq ${watch.progress.head_seq})` : 'none yet'],
        ['received', watch.received],
        ...(watch.resumed_from ? [['resumed', `after seq ${watch.resumed_from.head_seq} (${watch.resumed_from.watch_id} was cut by a reconnect)`]] : []),
      ]
    : [['state', 'not watching']];
  $('watch-status').replaceChildren(...rows.flatMap(([key, value]) => [el('dt', {}, key), el('dd', { 'data-key': key }, String(value))]));
  $('unwatch').disabled = !watch || Boolean(watch.ended);
}

// ---- events ----------------------------------------------------------------------------------

function clearEvents() {
  state.events = [];
  state.bases = new Map();
  state.dropped = 0;
  state.selected = null;
  state.picks = [];
  $('event-rows').replaceChildren();
  renderCount();
  renderDetail();
  renderDiff();
}

function renderCount() {
  $('event-count').textContent = `${state.events.length} shown${state.dropped ? `, ${state.dropped} older dropped` : ''}`;
}

/** The first event of a node on this watch: read the node once, the base its views are built on. */
function readBase(watch, nodeId) {
  if (state.bases.has(nodeId)) return;
  state.bases.set(nodeId, { pending: true });
  request('control.node_get', { node_id: nodeId, view: 'stored' })
    .then(
      (node) => {
        const hashes = node.service_hashes ?? {};
        return { seq: node.seq, services: new Map(node.services.map((service) => [service.service_id, { service, hash: hashes[service.service_id] }])) };
      },
      (error) => ({ error: `${error.code}: ${error.message}` }),
    )
    .then((base) => {
      if (state.watch !== watch) return;
      state.bases.set(nodeId, base);
      renderDetail();
      renderDiff();
    });
}

function addEvent(watch, event) {
  readBase(watch, event.node_id);
  watch.received += 1;
  watch.head_seq = Math.max(watch.head_seq, event.seq);
  state.events.push(event);
  if (state.events.length > MAX_EVENTS) {
    const gone = state.events.shift();
    state.dropped += 1;
    document.querySelector(`#event-rows tr[data-seq="${gone.seq}"]`)?.remove();
    state.picks = state.picks.filter((seq) => seq !== gone.seq);
    if (state.selected === gone.seq) state.selected = null;
  }
  // Newest first: a live stream stays in view without scrolling.
  $('event-rows').prepend(eventRow(event));
  renderCount();
  renderWatch();
}

function eventRow(event) {
  const pick = el('input', { type: 'checkbox', class: 'pick', title: 'pick for the diff', onchange: () => togglePick(event.seq, pick.checked) });
  const d = deltaOf(event);
  return el(
    'tr',
    {
      'data-seq': event.seq,
      'data-node': event.node_id,
      onclick: (click) => {
        if (click.target instanceof HTMLInputElement || click.target instanceof HTMLAnchorElement) return;
        select(event.seq);
      },
    },
    el('td', {}, pick),
    el('td', { class: 'seq' }, event.seq),
    el('td', { class: 'time', title: isoTime(event.timestamp_ms) }, time(event.timestamp_ms)),
    el('td', { class: 'node' }, event.node_id),
    el('td', { class: 'kind' }, event.kind),
    el('td', { class: 'replay' }, event.replay ? 'replay' : 'live'),
    el(
      'td',
      {
        class: 'delta',
        title: [...d.added.map((e) => `+${e.service_id}`), ...d.updated.map((e) => `~${e.service_id}`), ...d.removed.map((e) => `-${e.service_id}`)].join(' '),
      },
      deltaSummary(event),
    ),
    el('td', { class: 'fs' }, fsLink(event.node_id)),
  );
}

const eventAt = (seq) => state.events.find((e) => e.seq === seq);

/**
 * A node's services right after the event `seq`, from the delta events kept (a suffix of its
 * history: older ones leave first) and its base read: `{services: Map(id → entry), complete, note}`.
 * An entry is `{service, hash}`, or `{version, hash, unseen: true}` for a service that existed
 * then but whose descriptor the page never saw (it changed later, and its earlier version came
 * before the oldest event kept). From the base forward every view is exact; before it, a service
 * is what its last change at or before `seq` made it, or, unchanged from there to the base, as in
 * the base; else only what a later delta says of its previous version.
 */
function viewAt(nodeId, seq) {
  const events = state.events.filter((e) => e.node_id === nodeId).sort((a, b) => a.seq - b.seq);
  const base = state.bases.get(nodeId);
  const known = base && base.services ? base : null;
  const services = new Map();
  const touches = (e) => {
    const d = deltaOf(e);
    const changed = new Map((e.changed_services ?? []).map((s) => [s.service_id, s]));
    return [
      ...d.added.map((x) => ({ id: x.service_id, kind: 'added', entry: { service: changed.get(x.service_id), hash: x.hash } })),
      ...d.updated.map((x) => ({
        id: x.service_id,
        kind: 'updated',
        entry: { service: changed.get(x.service_id), hash: x.hash },
        before: { version: x.previous_version, hash: x.previous_hash, unseen: true },
      })),
      ...d.removed.map((x) => ({ id: x.service_id, kind: 'removed', before: { version: x.version, hash: x.hash, unseen: true } })),
    ];
  };
  if (known && seq >= known.seq) {
    for (const [id, entry] of known.services) services.set(id, entry);
    for (const e of events) {
      if (e.seq <= known.seq || e.seq > seq) continue;
      for (const t of touches(e)) t.entry ? services.set(t.id, t.entry) : services.delete(t.id);
    }
    return { services, complete: true, note: '' };
  }
  const last = new Map();
  const next = new Map();
  for (const e of events) {
    for (const t of touches(e)) {
      if (e.seq <= seq) last.set(t.id, t);
      else if (!next.has(t.id) && (!known || e.seq <= known.seq)) next.set(t.id, t);
    }
  }
  const ids = new Set([...last.keys(), ...next.keys(), ...(known ? known.services.keys() : [])]);
  let unseen = 0;
  for (const id of ids) {
    const before = last.get(id);
    if (before) {
      if (before.entry) services.set(id, before.entry);
      continue;
    }
    const after = next.get(id);
    if (after) {
      if (after.before) {
        services.set(id, { service_id: id, ...after.before });
        unseen += 1;
      }
    } else if (known?.services.has(id)) services.set(id, known.services.get(id));
  }
  const why = !base ? 'no read of the node yet' : base.pending ? 'its read is on the way' : base.error ? `its read failed (${base.error})` : '';
  const complete = Boolean(known) && unseen === 0;
  const notes = [why, unseen ? `${unseen} service${unseen === 1 ? '' : 's'} not seen before this event` : ''].filter(Boolean);
  return { services, complete, note: complete ? '' : `partial: ${notes.join('; ') || 'services unchanged since before the oldest event kept are not known'}` };
}

/** The view as plain JSON (the export, the event detail). */
function viewJson(view) {
  return {
    complete: view.complete,
    ...(view.note ? { note: view.note } : {}),
    services: [...view.services.entries()]
      .sort(([a], [b]) => (a < b ? -1 : 1))
      .map(([id, e]) => (e.unseen ? { service_id: id, version: e.version, hash: e.hash, unseen: true } : e.service)),
  };
}

function select(seq) {
  state.selected = seq;
  for (const row of document.querySelectorAll('#event-rows tr')) row.classList.toggle('selected', Number(row.dataset.seq) === seq);
  renderDetail();
}

function transition(before, after) {
  return before === after ? String(after ?? '—') : `${before ?? '—'} → ${after ?? '—'}`;
}

function renderDetail() {
  const event = state.selected === null ? undefined : eventAt(state.selected);
  show($('detail'), Boolean(event));
  if (!event) return;
  $('detail-title').textContent = `seq ${event.seq} · ${event.node_id} · ${event.kind} · ${isoTime(event.timestamp_ms)}`;
  const d = deltaOf(event);
  const changes = [
    ...d.added.map((e) => ({ change: 'added', id: e.service_id, version: transition(undefined, e.version), hash: transition(undefined, e.hash) })),
    ...d.updated.map((e) => ({
      change: 'updated',
      id: e.service_id,
      version: transition(e.previous_version, e.version),
      hash: transition(e.previous_hash, e.hash),
    })),
    ...d.removed.map((e) => ({ change: 'removed', id: e.service_id, version: transition(e.version, undefined), hash: transition(e.hash, undefined) })),
  ];
  const view = viewAt(event.node_id, event.seq);
  $('detail-body').replaceChildren(
    el(
      'p',
      {},
      `delta ${deltaSummary(event)} · changed ${event.service_delta?.changed ?? false} · `,
      el('span', { class: 'services-after', title: view.note }, `${view.services.size}${view.complete ? '' : ' known'} services after`),
      ` · node ${event.node_name ?? event.node_id} · `,
      fsLink(event.node_id),
    ),
    changes.length === 0
      ? el('p', { class: 'muted no-changes' }, `no service changes (${event.kind})`)
      : el(
          'table',
          { class: 'changes' },
          el('thead', {}, el('tr', {}, el('th', {}, 'service'), el('th', {}, 'change'), el('th', {}, 'version'), el('th', {}, 'digest (hash)'))),
          el(
            'tbody',
            {},
            changes.map((c) =>
              el(
                'tr',
                { 'data-service': c.id, class: c.change },
                el('td', { class: 'service' }, c.id),
                el('td', { class: 'change' }, c.change),
                el('td', { class: 'version' }, c.version),
                el('td', { class: 'hash' }, c.hash),
              ),
            ),
          ),
        ),
    el('details', {}, el('summary', {}, 'event JSON'), el('pre', {}, JSON.stringify(event, null, 2))),
  );
}

// ---- diff ------------------------------------------------------------------------------------

function togglePick(seq, picked) {
  state.picks = state.picks.filter((s) => s !== seq);
  if (picked) state.picks.push(seq);
  // Picking a third event drops the oldest pick.
  while (state.picks.length > 2) state.picks.shift();
  for (const row of document.querySelectorAll('#event-rows tr')) {
    const isPicked = state.picks.includes(Number(row.dataset.seq));
    row.classList.toggle('picked', isPicked);
    row.querySelector('input.pick').checked = isPicked;
  }
  renderDiff();
}

const isObject = (v) => v !== null && typeof v === 'object' && !Array.isArray(v);

/** The JSON fields that differ, as JSON pointers; an absent side has no `a` (or `b`). */
function jsonDiff(a, b, path = '') {
  if (isObject(a) && isObject(b)) {
    const keys = [...new Set([...Object.keys(a), ...Object.keys(b)])].sort();
    return keys.flatMap((k) => jsonDiff(a[k], b[k], `${path}/${pointer(k)}`));
  }
  if (Array.isArray(a) && Array.isArray(b)) {
    return Array.from({ length: Math.max(a.length, b.length) }, (_, i) => jsonDiff(a[i], b[i], `${path}/${i}`)).flat();
  }
  if (JSON.stringify(a) === JSON.stringify(b)) return [];
  return [{ path: path || '/', ...(a === undefined ? {} : { a }), ...(b === undefined ? {} : { b }) }];
}

/**
 * Event A (the lower seq) against event B: node fields, then each service of the node views right
 * after each (viewAt) by service_id. A service whose descriptor one side never saw is compared by
 * its hash, without fields.
 */
function diffEvents(a, b) {
  const eventFields = ['node_id', 'node_name', 'kind', 'platform', 'labels'].flatMap((f) => jsonDiff(a[f], b[f], `/${f}`));
  const va = viewAt(a.node_id, a.seq);
  const vb = viewAt(b.node_id, b.seq);
  const sa = va.services;
  const sb = vb.services;
  const versionOf = (entry) => (entry.unseen ? entry.version : entry.service?.version);
  const services = [...new Set([...sa.keys(), ...sb.keys()])].sort().map((id) => {
    const x = sa.get(id);
    const y = sb.get(id);
    if (!x) return { service_id: id, change: 'added', version_b: versionOf(y) };
    if (!y) return { service_id: id, change: 'removed', version_a: versionOf(x) };
    if (x.unseen || y.unseen)
      return { service_id: id, change: x.hash === y.hash ? 'unchanged' : 'changed', version_a: versionOf(x), version_b: versionOf(y), unseen: true };
    const fields = jsonDiff(x.service, y.service);
    return { service_id: id, change: fields.length ? 'changed' : 'unchanged', version_a: versionOf(x), version_b: versionOf(y), fields };
  });
  const count = (change) => services.filter((s) => s.change === change).length;
  return {
    a_seq: a.seq,
    b_seq: b.seq,
    complete: va.complete && vb.complete,
    event_fields: eventFields,
    services,
    summary: { added: count('added'), removed: count('removed'), changed: count('changed'), unchanged: count('unchanged') },
  };
}

function pickedPair() {
  if (state.picks.length !== 2) return null;
  const [a, b] = state.picks.map(eventAt).sort((x, y) => x.seq - y.seq);
  return a && b ? { a, b } : null;
}

const shown = (value) => (value === undefined ? '(absent)' : JSON.stringify(value));

function renderDiff() {
  const pair = pickedPair();
  show($('diff'), Boolean(pair));
  if (!pair) return;
  const { a, b } = pair;
  const diff = diffEvents(a, b);
  const head = (e) => `seq ${e.seq} · ${e.node_id} · ${e.kind} · ${isoTime(e.timestamp_ms)}`;
  $('diff-title').textContent = `seq ${a.seq} ↔ seq ${b.seq}`;
  const fieldRows = (service, fields) =>
    fields.map((f) =>
      el(
        'tr',
        { class: 'field', 'data-service': service, 'data-path': f.path },
        el('td', { class: 'path' }, f.path),
        el('td', { class: 'a' }, shown(f.a)),
        el('td', { class: 'b' }, shown(f.b)),
        el('td', {}),
      ),
    );
  const partial = [a, b]
    .map((e) => viewAt(e.node_id, e.seq))
    .filter((v) => !v.complete)
    .map((v) => v.note);
  $('diff-body').replaceChildren(
    el(
      'p',
      { class: 'diff-summary' },
      `+${diff.summary.added} added · -${diff.summary.removed} removed · ~${diff.summary.changed} changed · ${diff.summary.unchanged} unchanged`,
    ),
    partial.length
      ? el('p', { class: 'muted partial' }, `Views rebuilt from the deltas: ${partial.join(' / ')}. A service not seen is compared by its hash.`)
      : null,
    el(
      'table',
      { class: 'diff' },
      el('thead', {}, el('tr', {}, el('th', {}, 'service / field'), el('th', {}, `A: ${head(a)}`), el('th', {}, `B: ${head(b)}`), el('th', {}, 'change'))),
      el(
        'tbody',
        {},
        fieldRows('', diff.event_fields),
        diff.services.map((s) => [
          el(
            'tr',
            { class: `service ${s.change}`, 'data-service': s.service_id },
            el('th', {}, s.service_id),
            el('td', { class: 'a' }, s.version_a ?? '—'),
            el('td', { class: 'b' }, s.version_b ?? '—'),
            el('td', { class: 'change' }, s.change),
          ),
          fieldRows(s.service_id, s.fields ?? []),
        ]),
      ),
    ),
  );
}

function exportDiff() {
  const pair = pickedPair();
  if (!pair) return;
  const { a, b } = pair;
  // The events as received (delta events carry only what changed), and the node views the diff compared.
  const report = {
    exported_at: new Date().toISOString(),
    a,
    b,
    views: { a: viewJson(viewAt(a.node_id, a.seq)), b: viewJson(viewAt(b.node_id, b.seq)) },
    diff: diffEvents(a, b),
  };
  download(`acheron-events-${a.seq}-${b.seq}.json`, new Blob([JSON.stringify(report, null, 2) + '\n'], { type: 'application/json' }));
}

export function startEvents() {
  $('project-form').addEventListener('submit', attachProject);
  $('watch-form').addEventListener('submit', applyWatch);
  $('unwatch').addEventListener('click', unwatch);
  $('export').addEventListener('click', exportDiff);
  on('ready', (reconnected) => {
    if (conn.attach && !$('project-id').value) $('project-id').value = conn.attach.project_id;
    if (reconnected) void resume();
  });
  renderWatch();
  renderCount();
}
