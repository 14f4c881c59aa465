// The service page: the descriptor (README rendered from help_md, schema, permissions, runtime),
// the invoke editor (pre-filled from TEMPLATE.json, checked against schema.input before sending),
// the config.json editor (checked against service-config.schema.json), the controls, and the live
// files read through the relay every 2 s while the page is open: status.json, health.json,
// metrics.json, last_error.txt and the last jobs, with charts of metrics.json over time.
import { controlButtons, logged } from './actions.js';
import { addSample, barChart, lineChart, perMinute, samples } from './charts.js';
import { $, clock, el, reason, route, show } from './dom.js';
import { actionable, fleet, onFleetChange, serviceState } from './fleet.js';
import { badge } from './fleet-view.js';
import { render as renderMarkdown } from './markdown.js';
import { invoke, listDir, readText, writeText } from './relay.js';
import { checkText } from './schema-check.js';

const REFRESH_MS = 2000;
const LIVE_FILES = ['status.json', 'health.json', 'metrics.json', 'last_error.txt'];
const JOBS_SHOWN = 5;

let page = null;
let configSchema = null;

const pretty = (text) => {
  try {
    return JSON.stringify(JSON.parse(text), null, 2);
  } catch {
    return text;
  }
};

function lookup(nodeId, serviceId) {
  const node = fleet.nodes.get(nodeId);
  return { node, service: node?.services.get(serviceId) };
}

function problemsList(target, problems) {
  target.replaceChildren(...problems.map((p) => el('li', { 'data-path': p.path }, `${p.path}: ${p.message}`)));
  show(target, problems.length > 0);
}

/** One editor (invoke or config): the text, its check on every keystroke, and the send button. */
function editor(prefix, schemaOf, buttonLabel, onSend) {
  const text = el('textarea', { id: `${prefix}-editor`, class: 'json-editor', rows: 8, spellcheck: 'false' });
  const problems = el('ul', { id: `${prefix}-problems`, class: 'problems', hidden: true });
  const send = el('button', { id: `${prefix}-send`, type: 'button' }, buttonLabel);
  const outcome = el('div', { id: `${prefix}-outcome`, class: 'outcome', hidden: true });
  const recheck = () => {
    const checked = checkText(schemaOf(), text.value);
    problemsList(problems, checked.problems ?? []);
    send.disabled = Boolean(checked.problems);
    text.classList.toggle('invalid', Boolean(checked.problems));
    return checked;
  };
  text.addEventListener('input', recheck);
  send.addEventListener('click', async () => {
    const checked = recheck();
    if (checked.problems) return;
    send.disabled = true;
    try {
      await onSend(text.value, outcome);
    } finally {
      recheck();
    }
  });
  return { text, problems, send, outcome, recheck, parts: [text, problems, el('div', { class: 'buttons' }, send), outcome] };
}

function showOutcome(target, kind, heading, body) {
  target.dataset.outcome = kind;
  target.replaceChildren(el('p', { class: 'outcome-head' }, heading), ...(body ? [el('pre', { class: 'outcome-body' }, body)] : []));
  show(target, true);
}

async function loadConfigSchema() {
  configSchema ??= await (await fetch('/debug/schemas/service-config.schema.json', { cache: 'no-store' })).json().catch(() => null);
  return configSchema;
}

/** Builds the page for `nodeId/serviceId`; its live part refreshes until another route is opened. */
export function openService(nodeId, serviceId) {
  closeService();
  const target = `${nodeId}/${serviceId}`;
  const current = { nodeId, serviceId, target, alive: true, timer: null, filled: false };
  page = current;
  const schemaInput = () => lookup(nodeId, serviceId).service?.schema?.input;

  const invokeEditor = editor('invoke', schemaInput, 'Invoke', async (text, outcome) => {
    let read;
    const result = await logged('invoke', target, async () => {
      read = await invoke(nodeId, serviceId, text);
      return read.ok ? 'ok' : `failed (${read.state})`;
    });
    if (!result.ok) return showOutcome(outcome, 'refused', `refused: ${reason(result.error)}`);
    // What the node read back: the result, or {error, state, invocation_id, status} of a failed invocation.
    showOutcome(outcome, read.ok ? 'ok' : 'failed', read.ok ? 'result' : `failed (${read.state}): ${read.error}`, pretty(read.text));
  });
  const configEditor = editor(
    'config',
    () => configSchema,
    'Save config.json',
    async (text, outcome) => {
      const result = await logged('config', target, () => writeText(nodeId, `/services/${serviceId}/config.json`, text));
      showOutcome(outcome, result.ok ? 'ok' : 'refused', result.ok ? 'saved: the next invocations use it' : `refused: ${reason(result.error)}`);
    },
  );

  $('service-title').textContent = target;
  $('service-body').replaceChildren(
    el('div', { id: 'service-head', class: 'service-head' }),
    el('div', { id: 'service-controls', class: 'controls' }),
    el(
      'div',
      { class: 'columns' },
      el(
        'div',
        { class: 'column' },
        el(
          'section',
          { class: 'panel', id: 'invoke-panel' },
          el('h3', {}, 'Invoke ', el('span', { class: 'muted', id: 'invoke-note' }, '')),
          ...invokeEditor.parts,
        ),
        el(
          'section',
          { class: 'panel', id: 'config-panel' },
          el('h3', {}, 'config.json ', el('span', { class: 'muted', id: 'config-note' }, '')),
          ...configEditor.parts,
        ),
        el('section', { class: 'panel' }, el('h3', {}, 'Metrics over time'), el('div', { id: 'service-charts' })),
      ),
      el(
        'div',
        { class: 'column' },
        el('section', { class: 'panel' }, el('h3', {}, 'Live files ', el('span', { class: 'muted', id: 'live-updated' }, '')), el('div', { id: 'live-files' })),
        el('section', { class: 'panel' }, el('h3', {}, `Last ${JOBS_SHOWN} jobs`), el('div', { id: 'jobs' })),
      ),
    ),
    el('section', { class: 'panel descriptor' }, el('h3', {}, 'Descriptor'), el('div', { id: 'service-descriptor' })),
  );
  current.invokeEditor = invokeEditor;
  current.configEditor = configEditor;
  renderDescriptor();
  void fill(current);
  void refresh(current);
}

/** Pre-fills the editors once the service is known: TEMPLATE.json and config.json, read through the relay. */
async function fill(current) {
  const { nodeId, serviceId } = current;
  const { service } = lookup(nodeId, serviceId);
  if (!service) return;
  current.filled = true;
  if (!actionable(service)) {
    for (const id of ['invoke-panel', 'config-panel']) show($(id), false);
    return;
  }
  const base = `/services/${serviceId}`;
  const [template, config] = await Promise.allSettled([readText(nodeId, `${base}/TEMPLATE.json`), readText(nodeId, `${base}/config.json`), loadConfigSchema()]);
  if (page !== current) return;
  // Not connected yet (or any more): filled at the next change of the fleet, once it is.
  if (template.status === 'rejected' && template.reason.code === 'unavailable') {
    current.filled = false;
    return;
  }
  const fallback = service.schema?.example === undefined ? '{}' : JSON.stringify(service.schema.example);
  current.invokeEditor.text.value = pretty(template.status === 'fulfilled' ? template.value : fallback);
  $('invoke-note').textContent =
    template.status === 'fulfilled' ? 'from TEMPLATE.json' : `TEMPLATE.json: ${reason(template.reason)}; from the descriptor's example`;
  current.invokeEditor.recheck();
  current.configEditor.text.value = config.status === 'fulfilled' ? pretty(config.value) : '{}';
  $('config-note').textContent = config.status === 'fulfilled' ? 'as the node has it' : `config.json: ${reason(config.reason)}`;
  current.configEditor.recheck();
}

export function closeService() {
  if (!page) return;
  page.alive = false;
  clearTimeout(page.timer);
  page = null;
}

function renderDescriptor() {
  if (!page) return;
  const { nodeId, serviceId } = page;
  const { node, service } = lookup(nodeId, serviceId);
  if (!service) {
    $('service-head').replaceChildren(
      el(
        'p',
        { class: 'muted' },
        node
          ? `no service ${serviceId} on ${nodeId} (removed, or hidden from this session)`
          : fleet.mode === 'loading'
            ? 'loading…'
            : `no node ${nodeId} in this session's fleet`,
      ),
    );
    $('service-controls').replaceChildren();
    page.shownKey = null;
    return;
  }
  if (!page.filled) void fill(page);
  const state = serviceState(node, service);
  // The fleet changes every few seconds; the page is rebuilt only when what it shows did.
  const key = JSON.stringify([state, node.state, service]);
  if (page.shownKey === key) return;
  page.shownKey = key;
  $('service-head').replaceChildren(
    badge(state),
    ' ',
    el('strong', {}, service.service_id),
    ` · kind ${service.kind} · version ${service.version} · node `,
    el('a', { href: '#fleet' }, nodeId),
    ` (${node.state}) · `,
    el('a', { href: route('fs', nodeId, '') }, 'files'),
  );
  $('service-head').dataset.state = state;
  $('service-controls').replaceChildren(
    ...(actionable(service) ? controlButtons(nodeId, serviceId, state) : [el('span', { class: 'muted' }, 'no controls: not an executable service')]),
  );
  const json = (title, value) =>
    el(
      'details',
      { class: 'json', 'data-part': title, open: title === 'schema' },
      el('summary', {}, title),
      el('pre', {}, JSON.stringify(value ?? null, null, 2)),
    );
  const readme = el('div', { class: 'readme', id: 'service-readme' });
  if (service.help_md) readme.replaceChildren(...renderMarkdown(service.help_md));
  else if (actionable(service)) {
    readme.replaceChildren(el('p', { class: 'muted' }, "no help_md: the node's generated README.md…"));
    readText(nodeId, `/services/${serviceId}/README.md`).then(
      (text) => readme.replaceChildren(...renderMarkdown(text)),
      (error) => readme.replaceChildren(el('p', { class: 'muted' }, `README.md: ${reason(error)}`)),
    );
  } else readme.replaceChildren(el('p', { class: 'muted' }, 'no README'));
  $('service-descriptor').replaceChildren(
    readme,
    json('schema', service.schema),
    json('permissions', service.permissions),
    json('runtime', service.runtime),
    json('endpoints and mounts', { endpoints: service.endpoints, mounts: service.mounts }),
    json('capabilities and ops', { capabilities: service.capabilities, ops: service.ops }),
  );
}

/** Reads the live files and the last jobs, then waits 2 s and does it again while the page is open. */
async function refresh(current) {
  const { nodeId, serviceId } = current;
  const { service } = lookup(nodeId, serviceId);
  if (service && actionable(service)) {
    const base = `/services/${serviceId}`;
    const files = await Promise.allSettled(LIVE_FILES.map((name) => readText(nodeId, `${base}/${name}`)));
    if (!current.alive) return;
    $('live-files').replaceChildren(
      ...LIVE_FILES.map((name, i) => {
        const r = files[i];
        return el(
          'div',
          { class: 'live-file', 'data-file': name, 'data-outcome': r.status === 'fulfilled' ? 'ok' : 'refused' },
          el('h4', {}, name),
          r.status === 'fulfilled' ? el('pre', {}, r.value === '' ? '(empty)' : pretty(r.value)) : el('p', { class: 'error' }, reason(r.reason)),
        );
      }),
    );
    $('live-updated').textContent = `read ${clock(Date.now())}, every ${REFRESH_MS / 1000} s`;
    const metrics = files[2];
    if (metrics.status === 'fulfilled') {
      try {
        addSample(current.target, JSON.parse(metrics.value));
      } catch {
        // A partial document: the next read will do.
      }
    }
    renderServiceCharts(current.target, $('service-charts'));
    await renderJobs(current, `${base}/jobs`);
  } else if (service) {
    $('live-files').replaceChildren(el('p', { class: 'muted' }, 'no live files: not an executable service (catalog only or built in)'));
  }
  if (!current.alive) return;
  current.timer = setTimeout(() => void refresh(current), REFRESH_MS);
}

async function renderJobs(current, dir) {
  const { nodeId } = current;
  let rows;
  try {
    const names = (await listDir(nodeId, dir))
      .filter((e) => e.dir)
      .map((e) => e.name)
      .sort()
      .slice(-JOBS_SHOWN)
      .reverse();
    rows = await Promise.all(
      names.map(async (name) => {
        const status = await readText(nodeId, `${dir}/${name}/status.json`)
          .then(JSON.parse)
          .catch((error) => ({ error: reason(error) }));
        return { name, status };
      }),
    );
  } catch (error) {
    if (current.alive) $('jobs').replaceChildren(el('p', { class: 'error' }, `jobs/: ${reason(error)}`));
    return;
  }
  if (!current.alive) return;
  // Keep open job details open across refreshes.
  const open = new Set([...document.querySelectorAll('#jobs details[open]')].map((d) => d.dataset.job));
  $('jobs').replaceChildren(
    rows.length === 0
      ? el('p', { class: 'muted' }, 'no jobs yet')
      : el(
          'div',
          {},
          rows.map(({ name, status }) => {
            const details = el(
              'details',
              { 'data-job': name, open: open.has(name) },
              el(
                'summary',
                {},
                el('code', {}, name),
                ' ',
                badge(jobState(status.state)),
                ` ${status.state ?? ''} · ${status.duration_ms ?? '—'} ms · exit ${status.exit_code ?? '—'}${status.error ? ` · ${status.error}` : ''}`,
              ),
              el('div', { class: 'job-files' }),
            );
            details.addEventListener('toggle', () => {
              if (details.open) void jobFiles(nodeId, `${dir}/${name}`, details.querySelector('.job-files'));
            });
            if (details.open) void jobFiles(nodeId, `${dir}/${name}`, details.querySelector('.job-files'));
            return details;
          }),
        ),
  );
}

const jobState = (state) => (state === 'ok' ? 'online' : state === 'running' || state === 'queued' ? 'degraded' : 'offline');

async function jobFiles(nodeId, dir, target) {
  const files = await Promise.allSettled(['request.json', 'result.json', 'stderr.txt'].map((name) => readText(nodeId, `${dir}/${name}`)));
  target.replaceChildren(
    ...['request.json', 'result.json', 'stderr.txt'].map((name, i) =>
      el(
        'div',
        { 'data-file': name },
        el('h4', {}, name),
        files[i].status === 'fulfilled'
          ? el('pre', {}, files[i].value === '' ? '(empty)' : pretty(files[i].value))
          : el('p', { class: 'error' }, reason(files[i].reason)),
      ),
    ),
  );
}

/** Invocations and failures per minute and latency p50/p99, from the metrics.json readings kept. */
export function renderServiceCharts(key, target) {
  const list = samples.get(key) ?? [];
  const now = Date.now();
  const invocations = perMinute(list, 'invokes_total', 10, now);
  const failures = perMinute(list, 'failures_total', 10, now);
  target.replaceChildren(
    barChart({
      title: `${key}: invocations and failures per minute`,
      name: `${key} per minute`,
      buckets: invocations,
      series: [
        { name: 'invocations', values: invocations.map((b) => b.value) },
        { name: 'failures', values: failures.map((b) => b.value) },
      ],
      labelEvery: 2,
    }),
    lineChart({
      title: `${key}: latency (ms)`,
      name: `${key} latency`,
      from: Math.max(now - 10 * 60_000, Math.min(now - 2 * 60_000, list[0]?.at_ms ?? now)),
      to: now,
      unit: ' ms',
      series: ['p50', 'p99'].map((name) => ({ name, points: list.map((s) => ({ t: s.at_ms, v: s[name] })) })),
    }),
  );
}

export function startServicePage() {
  onFleetChange(() => renderDescriptor());
}
