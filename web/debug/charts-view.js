// The charts view: events per second over the last minutes (from the fleet's watch, replayed
// events included), each node's online/offline timeline, and per service its invocations and
// failures per minute and latency p50/p99 from metrics.json, read through the relay every 5 s
// while the view is open (at most MAX_SAMPLED services: narrow the filter to pick them).
import { addSample, barChart, rate, segments, timeline } from './charts.js';
import { $, el, reason } from './dom.js';
import { actionable, fleet, HISTORY_MS, onFleetChange } from './fleet.js';
import { readText } from './relay.js';
import { renderServiceCharts } from './service.js';

const SAMPLE_EVERY_MS = 5000;
const MAX_SAMPLED = 8;
const RATE_WINDOW_MS = 10 * 60_000;

let view = null;

/** The executable services of the nodes matching the view's node filter, at most MAX_SAMPLED. */
function sampled(nodeFilter) {
  const keys = [];
  for (const node of [...fleet.nodes.values()].sort((a, b) => (a.node_id < b.node_id ? -1 : 1))) {
    if (nodeFilter && node.node_id !== nodeFilter) continue;
    if (node.state !== 'online') continue;
    for (const service of [...node.services.values()].sort((a, b) => (a.service_id < b.service_id ? -1 : 1))) {
      if (actionable(service)) keys.push({ nodeId: node.node_id, serviceId: service.service_id, key: `${node.node_id}/${service.service_id}` });
    }
  }
  return keys.slice(0, MAX_SAMPLED);
}

function renderOverview() {
  if (!view) return;
  const now = Date.now();
  const buckets = rate(fleet.events, RATE_WINDOW_MS, 10_000, now);
  const from = Math.max(now - HISTORY_MS, Math.min(fleet.since_ms ?? now, ...[...fleet.transitions.values()].map((t) => t[0]?.at_ms ?? now)));
  const nodes = [...fleet.nodes.keys(), ...[...fleet.transitions.keys()].filter((id) => !fleet.nodes.has(id))]
    .sort()
    .filter((id) => !view.nodeFilter || id === view.nodeFilter);
  $('chart-events').replaceChildren(
    barChart({
      title: 'catalog events per second (10 s buckets)',
      name: 'events per second',
      buckets,
      series: [{ name: 'events/s', values: buckets.map((b) => b.value) }],
      labelEvery: 12,
    }),
  );
  $('chart-timeline').replaceChildren(
    nodes.length === 0
      ? el('p', { class: 'muted' }, 'no nodes')
      : timeline({
          title: 'nodes online / offline',
          name: 'node timeline',
          from,
          to: now,
          rows: nodes.map((id) => ({ label: id, segments: segments(fleet.transitions.get(id) ?? [], from, now) })),
        }),
  );
}

async function sample(current) {
  const services = sampled(current.nodeFilter);
  const readings = await Promise.allSettled(services.map((s) => readText(s.nodeId, `/services/${s.serviceId}/metrics.json`)));
  if (view !== current) return;
  $('chart-services').replaceChildren(
    services.length === 0
      ? el('p', { class: 'muted' }, 'no executable services online')
      : el(
          'div',
          {},
          services.map((s, i) => {
            const r = readings[i];
            if (r.status === 'fulfilled') {
              try {
                addSample(s.key, JSON.parse(r.value));
              } catch {
                // A partial document: the next reading will do.
              }
            }
            const box = el(
              'div',
              { class: 'service-charts', 'data-service': s.key },
              r.status === 'rejected' ? el('p', { class: 'error' }, `${s.key} metrics.json: ${reason(r.reason)}`) : null,
            );
            const charts = el('div');
            renderServiceCharts(s.key, charts);
            box.append(charts);
            return box;
          }),
        ),
  );
  renderOverview();
  current.timer = setTimeout(() => void sample(current), SAMPLE_EVERY_MS);
}

/** Opens the view (for one node when `nodeFilter` is given). */
export function openCharts(nodeFilter) {
  closeCharts();
  view = { nodeFilter: nodeFilter || '', timer: null };
  $('charts-title').textContent = nodeFilter ? `node ${nodeFilter}` : 'the whole fleet';
  renderOverview();
  void sample(view);
}

export function closeCharts() {
  if (!view) return;
  clearTimeout(view.timer);
  view = null;
}

export function startChartsView() {
  onFleetChange(renderOverview);
}
