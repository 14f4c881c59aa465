// The fleet view: counts per state, filters (node, label, kind, state) and every node the session
// may see with its services, their state by colour and by word, and their supervision detail.
import { controlButtons } from './actions.js';
import { projectHint } from './conn.js';
import { $, clock, el, relative, route } from './dom.js';
import { actionable, fleet, onFleetChange, serviceState } from './fleet.js';

const SERVICE_STATES = ['online', 'degraded', 'offline', 'disabled'];
const NODE_STATES = ['online', 'offline'];
const MARKS = { online: '●', degraded: '◐', offline: '○', disabled: '⊘' };

/** A state as a word with a mark and a colour (the word alone carries it: colour is a second cue). */
export const badge = (state) => el('span', { class: 'badge', 'data-state': state }, `${MARKS[state] ?? '·'} ${state}`);

const labelText = (labels) =>
  Object.entries(labels ?? {})
    .map(([k, v]) => `${k}=${v}`)
    .join(' ');
const platformText = (p) => [p?.os && `${p.os}/${p.arch ?? '?'}`, p?.runtime_kind].filter(Boolean).join(' ');

function filters() {
  return {
    node: $('filter-node').value.trim().toLowerCase(),
    label: $('filter-label').value.trim().toLowerCase(),
    kind: $('filter-kind').value,
    state: $('filter-state').value,
  };
}

function nodeMatches(node, f) {
  if (
    f.node &&
    !node.node_id.toLowerCase().includes(f.node) &&
    !String(node.node_name ?? '')
      .toLowerCase()
      .includes(f.node)
  )
    return false;
  if (f.label) {
    const labels = Object.entries(node.labels ?? {}).map(([k, v]) => `${k}=${v}`.toLowerCase());
    // `rack=r7` must match a label exactly; a bare word matches any key or value containing it.
    if (!labels.some((l) => (f.label.includes('=') ? l === f.label : l.includes(f.label)))) return false;
  }
  return true;
}

const serviceMatches = (node, service, f) => (!f.kind || service.kind === f.kind) && (!f.state || serviceState(node, service) === f.state);

/** `(3 s ago)`: kept current in place by the ticker, so a block is rebuilt only when its node changes. */
const ago = (ms) => el('span', { class: 'ago', 'data-at-ms': ms }, `(${relative(ms)})`);

function tick() {
  const now = Date.now();
  for (const span of document.querySelectorAll('#fleet-body .ago')) span.textContent = `(${relative(Number(span.dataset.atMs), now)})`;
}

/** Supervision and probe facts as one line (only executable services publish them). */
function detail(node, service) {
  const status = service.runtime?.supervision_status;
  if (!status) return service.runtime?.type === 'native_inproc' ? 'built in' : 'catalog only (nothing to run)';
  const parts = [];
  if (status.enabled === false) parts.push('disabled');
  parts.push(`restarts ${status.restarts_total ?? 0}`);
  if (status.consecutive_failures) parts.push(`${status.consecutive_failures} consecutive failures`);
  if (status.backoff_until_ms && status.backoff_until_ms > Date.now()) parts.push(`backoff until ${clock(status.backoff_until_ms)}`);
  if (status.last_transition_ms) parts.push(`since ${clock(status.last_transition_ms)}`);
  if (status.last_error) parts.push(`last error: ${status.last_error}`);
  if (node.state === 'offline') parts.push('node offline: as last published');
  return parts.join(' · ');
}

function counts() {
  const nodes = Object.fromEntries(NODE_STATES.map((s) => [s, 0]));
  const services = Object.fromEntries(SERVICE_STATES.map((s) => [s, 0]));
  for (const node of fleet.nodes.values()) {
    nodes[node.state] = (nodes[node.state] ?? 0) + 1;
    for (const service of node.services.values()) services[serviceState(node, service)] += 1;
  }
  const count = (scope, state, n) =>
    el(
      'button',
      {
        type: 'button',
        class: 'count',
        'data-count': `${scope}-${state}`,
        'data-state': state,
        title: scope === 'services' ? `show ${state} services` : undefined,
        onclick:
          scope === 'services'
            ? () => {
                $('filter-state').value = $('filter-state').value === state ? '' : state;
                renderFleet();
              }
            : undefined,
      },
      el('span', { class: 'n' }, n),
      ` ${state}`,
    );
  return [
    el('span', { class: 'scope' }, `${fleet.nodes.size} nodes:`),
    NODE_STATES.map((s) => count('nodes', s, nodes[s])),
    el('span', { class: 'scope' }, `${Object.values(services).reduce((a, b) => a + b, 0)} services:`),
    SERVICE_STATES.map((s) => count('services', s, services[s])),
  ];
}

function nodeBlock(node, f) {
  const all = [...node.services.values()].sort((a, b) => (a.service_id < b.service_id ? -1 : 1));
  const shown = all.filter((s) => serviceMatches(node, s, f));
  if (shown.length === 0 && (f.kind || f.state)) return null;
  return el(
    'article',
    { class: 'node', 'data-node': node.node_id, 'data-state': node.state },
    el(
      'header',
      { class: 'node-head' },
      badge(node.state),
      el('strong', { class: 'node-id' }, node.node_id),
      node.node_name && node.node_name !== node.node_id ? el('span', { class: 'muted' }, ` (${node.node_name})`) : null,
      el('span', { class: 'labels', title: 'labels' }, labelText(node.labels) || 'no labels'),
      el('span', { class: 'platform', title: 'platform' }, platformText(node.platform)),
      el('span', { class: 'last-seen', title: 'last seen (UTC)' }, `seen ${clock(node.last_seen_ms)} `, ago(node.last_seen_ms)),
      el(
        'span',
        { class: 'lease', title: 'lease expiry (UTC)' },
        node.state === 'online' ? [`lease until ${clock(node.lease_expires_at_ms)} `, ago(node.lease_expires_at_ms)] : 'no lease',
      ),
      el('a', { class: 'fs-link', href: route('fs', node.node_id, ''), 'data-node': node.node_id }, 'files'),
      el('a', { class: 'timeline-link', href: route('charts', node.node_id) }, 'timeline'),
    ),
    node.loading && node.services.size === 0 ? el('p', { class: 'muted' }, 'reading…') : null,
    node.error ? el('p', { class: 'error' }, `node_get: ${node.error.code}: ${node.error.message}`) : null,
    shown.length === 0
      ? el('p', { class: 'muted' }, 'no services')
      : el(
          'table',
          { class: 'services' },
          el(
            'thead',
            {},
            el(
              'tr',
              {},
              ['service', 'kind', 'version', 'state', 'supervision / probe', 'actions'].map((h) => el('th', {}, h)),
            ),
          ),
          el(
            'tbody',
            {},
            shown.map((service) => {
              const state = serviceState(node, service);
              return el(
                'tr',
                { class: 'service', 'data-service': service.service_id, 'data-state': state },
                el('td', { class: 'service-id' }, el('a', { href: route('service', node.node_id, service.service_id) }, service.service_id)),
                el('td', { class: 'kind' }, service.kind),
                el('td', { class: 'version' }, service.version),
                el('td', { class: 'state' }, badge(state)),
                el('td', { class: 'detail' }, detail(node, service)),
                el(
                  'td',
                  { class: 'actions' },
                  actionable(service)
                    ? [
                        ...controlButtons(node.node_id, service.service_id, state),
                        el('a', { class: 'invoke-link', href: route('service', node.node_id, service.service_id) }, 'invoke…'),
                      ]
                    : null,
                ),
              );
            }),
          ),
        ),
  );
}

function syncKinds() {
  const select = $('filter-kind');
  const kinds = [...new Set([...fleet.nodes.values()].flatMap((n) => [...n.services.values()].map((s) => s.kind)))].sort();
  const current = [...select.options].slice(1).map((o) => o.value);
  if (JSON.stringify(kinds) === JSON.stringify(current)) return;
  const chosen = select.value;
  select.replaceChildren(el('option', { value: '' }, 'any kind'), ...kinds.map((k) => el('option', { value: k }, k)));
  select.value = kinds.includes(chosen) ? chosen : '';
}

/** node_id → {key, block}: a node's block is rebuilt only when what it shows changed. */
const blocks = new Map();

function blockOf(node, f) {
  const key = JSON.stringify([
    f,
    node.state,
    node.node_name,
    node.labels,
    node.platform,
    node.last_seen_ms,
    node.lease_expires_at_ms,
    node.loading,
    node.error?.message,
    node.seq,
    [...node.services.values()].map((s) => [s.service_id, s.kind, s.version, serviceState(node, s), detail(node, s)]),
  ]);
  const kept = blocks.get(node.node_id);
  if (kept?.key === key) return kept.block;
  const block = nodeBlock(node, f);
  blocks.set(node.node_id, { key, block });
  return block;
}

function renderFleet() {
  syncKinds();
  const f = filters();
  $('fleet-counts').replaceChildren(...counts().flat());
  const mode = fleet.mode === 'watch' ? `live (watch ${fleet.watchId ?? '…'}, seq ${fleet.lastSeq})` : fleet.mode;
  $('fleet-mode').textContent = mode;
  $('fleet-mode').dataset.mode = fleet.mode;
  $('fleet-note').textContent = fleet.note;
  for (const nodeId of blocks.keys()) if (!fleet.nodes.has(nodeId)) blocks.delete(nodeId);
  const nodes = [...fleet.nodes.values()].sort((a, b) => (a.node_id < b.node_id ? -1 : 1)).filter((n) => nodeMatches(n, f));
  const shown = nodes.map((n) => blockOf(n, f)).filter(Boolean);
  const hint = projectHint();
  const children = [
    hint,
    fleet.error ? el('p', { class: 'error fleet-error' }, `node_list: ${fleet.error.code}: ${fleet.error.message}`) : null,
    ...(shown.length
      ? shown
      : [el('p', { class: 'muted empty' }, fleet.mode === 'loading' ? 'loading…' : fleet.nodes.size ? 'no node matches the filters' : 'no nodes')]),
  ].filter(Boolean);
  const body = $('fleet-body');
  // Moving a block out and back would drop a click in progress: touch the list only when it changed.
  const same =
    children.length === body.children.length &&
    children.every(
      (child, i) =>
        child === body.children[i] || (child.tagName === 'P' && body.children[i].tagName === 'P' && child.textContent === body.children[i].textContent),
    );
  if (!same) body.replaceChildren(...children);
  tick();
}

export function startFleetView() {
  onFleetChange(renderFleet);
  for (const id of ['filter-node', 'filter-label']) $(id).addEventListener('input', renderFleet);
  for (const id of ['filter-kind', 'filter-state']) $(id).addEventListener('change', renderFleet);
  $('filter-state').replaceChildren(el('option', { value: '' }, 'any state'), ...SERVICE_STATES.map((s) => el('option', { value: s }, s)));
  setInterval(tick, 1000);
  renderFleet();
}
