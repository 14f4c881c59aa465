// Plain SVG charts, readable without colour: every bar and point carries its number as text, the
// two series of a chart differ by fill pattern or dash as well as by colour, and a timeline names
// each state in words (the hatching is one pattern, `#hatch`, defined once in index.html). Also
// the metrics samples the charts are drawn from: what the console read of a service's
// metrics.json, and when.
import { clock, el, svg } from './dom.js';

const WIDTH = 640;
const HEIGHT = 150;
const PAD = { left: 44, right: 12, top: 22, bottom: 24 };

/** `node/service` → `[{at_ms, invokes_total, failures_total, p50, p99}]`, oldest first, 30 min at most. */
export const samples = new Map();
const KEEP_MS = 30 * 60_000;

/** Keeps one reading of a service's metrics.json. */
export function addSample(key, metrics, atMs = Date.now()) {
  const list = samples.get(key) ?? [];
  list.push({
    at_ms: atMs,
    invokes_total: Number(metrics.invokes_total ?? 0),
    failures_total: Number(metrics.failures_total ?? 0),
    p50: metrics.latency_ms?.p50 ?? null,
    p99: metrics.latency_ms?.p99 ?? null,
  });
  while (list.length && list[0].at_ms < atMs - KEEP_MS) list.shift();
  samples.set(key, list);
}

/**
 * A counter's increase per minute over the last `minutes` whole minutes (the current one last):
 * the newest reading in the minute less the one at its start (the last before it, else the
 * first inside it). A minute without a reading is `null` (no data).
 */
export function perMinute(list, field, minutes = 10, now = Date.now()) {
  const end = Math.ceil(now / 60_000) * 60_000;
  const buckets = [];
  for (let i = minutes - 1; i >= 0; i -= 1) {
    const to = end - i * 60_000;
    const from = to - 60_000;
    const last = list.filter((s) => s.at_ms <= to).at(-1);
    const start = list.filter((s) => s.at_ms <= from).at(-1) ?? list.find((s) => s.at_ms > from && s.at_ms <= to);
    const value = last && start && last.at_ms > from ? Math.max(0, last[field] - start[field]) : null;
    buckets.push({ from, to, label: clock(from).slice(0, 5), value });
  }
  return buckets;
}

/** Events per second in `bucketMs` buckets over the last `windowMs`. */
export function rate(events, windowMs = 10 * 60_000, bucketMs = 10_000, now = Date.now()) {
  const end = Math.ceil(now / bucketMs) * bucketMs;
  const count = windowMs / bucketMs;
  const buckets = Array.from({ length: count }, (_, i) => {
    const from = end - (count - i) * bucketMs;
    return { from, to: from + bucketMs, label: clock(from).slice(0, 8), value: 0 };
  });
  for (const e of events) {
    const index = Math.floor((e.timestamp_ms - (end - windowMs)) / bucketMs);
    if (index >= 0 && index < count) buckets[index].value += 1;
  }
  for (const b of buckets) b.value = Math.round((b.value / (bucketMs / 1000)) * 100) / 100;
  return buckets;
}

const niceMax = (max) => {
  if (!(max > 0)) return 1;
  const step = 10 ** Math.floor(Math.log10(max));
  return Math.ceil(max / step) * step;
};

function frame(title, max, unit) {
  const y = (v) => PAD.top + (HEIGHT - PAD.top - PAD.bottom) * (1 - v / max);
  return {
    y,
    parts: [
      svg('text', { x: PAD.left, y: 14, class: 'chart-title' }, title),
      svg('line', { x1: PAD.left, x2: WIDTH - PAD.right, y1: y(0), y2: y(0), class: 'axis' }),
      svg('line', { x1: PAD.left, x2: WIDTH - PAD.right, y1: y(max), y2: y(max), class: 'grid' }),
      svg('text', { x: PAD.left - 4, y: y(max) + 4, class: 'tick', 'text-anchor': 'end' }, `${max}${unit}`),
      svg('text', { x: PAD.left - 4, y: y(0) + 4, class: 'tick', 'text-anchor': 'end' }, `0${unit}`),
    ],
  };
}

/**
 * Bars per bucket, one or two series side by side (the second hatched): `series = [{name, values}]`
 * with `values[i]` for `buckets[i]` (`null`: no data, drawn as a dash). Each bar is labelled with
 * its value when it is not zero.
 */
export function barChart({ title, buckets, series, unit = '', labelEvery = 1, name }) {
  const max = niceMax(Math.max(0, ...series.flatMap((s) => s.values.filter((v) => v !== null))));
  const { y, parts } = frame(title, max, unit);
  const slot = (WIDTH - PAD.left - PAD.right) / buckets.length;
  const barWidth = Math.max(1, (slot - 2) / series.length);
  const bars = buckets.flatMap((bucket, i) =>
    series.map((s, k) => {
      const value = s.values[i];
      const x = PAD.left + i * slot + 1 + k * barWidth;
      if (value === null) return svg('text', { x: x + barWidth / 2, y: y(0) - 2, class: 'no-data', 'text-anchor': 'middle' }, '–');
      return svg(
        'g',
        { class: `bar series-${k}`, 'data-series': s.name, 'data-bucket': bucket.label, 'data-value': value },
        svg(
          'rect',
          { x, y: y(value), width: barWidth, height: Math.max(0, y(0) - y(value)), class: k === 0 ? 'fill-a' : 'fill-b' },
          svg('title', {}, `${s.name} ${bucket.label}: ${value}${unit}`),
        ),
        value > 0 && barWidth >= 9 ? svg('text', { x: x + barWidth / 2, y: y(value) - 2, class: 'value', 'text-anchor': 'middle' }, String(value)) : null,
      );
    }),
  );
  const labels = buckets.map((bucket, i) =>
    i % labelEvery === 0 ? svg('text', { x: PAD.left + i * slot + slot / 2, y: HEIGHT - 8, class: 'tick', 'text-anchor': 'middle' }, bucket.label) : null,
  );
  return chart(
    name ?? title,
    [...parts, ...bars, ...labels],
    series.map((s, k) => ({ name: s.name, swatch: k === 0 ? 'fill-a' : 'fill-b' })),
  );
}

/** Lines over time, each with its own dash and its name at its last point: `series = [{name, points: [{t, v}]}]`. */
export function lineChart({ title, series, from, to, unit = '', name }) {
  const max = niceMax(Math.max(0, ...series.flatMap((s) => s.points.map((p) => p.v))));
  const { y, parts } = frame(title, max, unit);
  const x = (t) => PAD.left + ((t - from) / Math.max(1, to - from)) * (WIDTH - PAD.left - PAD.right);
  const lines = series.map((s, k) => {
    const points = s.points.filter((p) => p.t >= from && p.t <= to && p.v !== null);
    if (points.length === 0) return null;
    const last = points.at(-1);
    return svg(
      'g',
      { class: `line series-${k}`, 'data-series': s.name, 'data-last': last.v },
      svg('polyline', { points: points.map((p) => `${x(p.t).toFixed(1)},${y(p.v).toFixed(1)}`).join(' '), class: `stroke-${k}` }),
      points.map((p) => svg('circle', { cx: x(p.t), cy: y(p.v), r: 2, class: `stroke-${k}` }, svg('title', {}, `${s.name} ${clock(p.t)}: ${p.v}${unit}`))),
      svg('text', { x: Math.min(x(last.t) + 3, WIDTH - 60), y: y(last.v) - 4, class: 'value' }, `${s.name} ${last.v}${unit}`),
    );
  });
  const ticks = [from, (from + to) / 2, to].map((t, i) =>
    svg('text', { x: x(t), y: HEIGHT - 8, class: 'tick', 'text-anchor': ['start', 'middle', 'end'][i] }, clock(t)),
  );
  const empty = lines.every((l) => l === null) ? svg('text', { x: WIDTH / 2, y: HEIGHT / 2, class: 'no-data', 'text-anchor': 'middle' }, 'no data yet') : null;
  return chart(
    name ?? title,
    [...parts, ...lines, ...ticks, empty],
    series.map((s, k) => ({ name: s.name, swatch: `stroke-${k}`, line: true })),
  );
}

const ROW = 22;

/**
 * One row per node: its states over [from, to] as segments (`[{from, to, state}]`), each labelled
 * with its state's word when wide enough, offline hatched, with the moments of change as ticks.
 */
export function timeline({ title, rows, from, to, name }) {
  const height = PAD.top + rows.length * ROW + PAD.bottom;
  const left = 110;
  const x = (t) => left + ((t - from) / Math.max(1, to - from)) * (WIDTH - left - PAD.right);
  const body = rows.map((row, i) => {
    const top = PAD.top + i * ROW;
    return svg(
      'g',
      { class: 'timeline-row', 'data-node': row.label, 'data-now': row.segments.at(-1)?.state ?? 'unknown' },
      svg('text', { x: left - 6, y: top + 14, class: 'tick', 'text-anchor': 'end' }, row.label),
      row.segments.map((seg) => {
        const x1 = x(Math.max(from, seg.from));
        const width = Math.max(1, x(Math.min(to, seg.to)) - x1);
        return svg(
          'g',
          { class: 'segment', 'data-state': seg.state },
          svg(
            'rect',
            { x: x1, y: top + 2, width, height: ROW - 6, class: `state-${seg.state}` },
            svg('title', {}, `${row.label} ${seg.state} ${clock(seg.from)}–${clock(seg.to)}`),
          ),
          width > 48 ? svg('text', { x: x1 + 4, y: top + 14, class: 'segment-label' }, seg.state) : null,
        );
      }),
    );
  });
  const ticks = [from, (from + to) / 2, to].map((t, i) =>
    svg('text', { x: x(t), y: height - 8, class: 'tick', 'text-anchor': ['start', 'middle', 'end'][i] }, clock(t)),
  );
  const parts = [svg('text', { x: 4, y: 14, class: 'chart-title' }, title), ...body, ...ticks];
  return chart(
    name ?? title,
    parts,
    [
      { name: 'online', swatch: 'state-online' },
      { name: 'offline (hatched)', swatch: 'state-offline' },
      { name: 'unknown', swatch: 'state-unknown' },
    ],
    height,
  );
}

function chart(name, parts, legend, height = HEIGHT) {
  return el(
    'figure',
    { class: 'chart', 'data-chart': name },
    svg('svg', { viewBox: `0 0 ${WIDTH} ${height}`, width: WIDTH, height, role: 'img', 'aria-label': name }, parts),
    el(
      'figcaption',
      { class: 'legend' },
      legend.map((item) =>
        el(
          'span',
          { class: 'legend-item' },
          svg(
            'svg',
            { width: 18, height: 10, 'aria-hidden': 'true' },
            item.line ? svg('line', { x1: 0, x2: 18, y1: 5, y2: 5, class: item.swatch }) : svg('rect', { width: 18, height: 10, class: item.swatch }),
          ),
          ` ${item.name}`,
        ),
      ),
    ),
  );
}

/** A node's segments over [from, to] from its transitions (`[{at_ms, state}]`): `unknown` before the first. */
export function segments(transitions, from, to) {
  const segs = [];
  let state = 'unknown';
  let at = from;
  for (const t of transitions) {
    if (t.at_ms <= from) {
      state = t.state;
      continue;
    }
    if (t.at_ms >= to) break;
    segs.push({ from: at, to: t.at_ms, state });
    state = t.state;
    at = t.at_ms;
  }
  segs.push({ from: at, to, state });
  return segs.filter((s) => s.to > s.from);
}
