// A read-only browser of a node's fs/ exports through the relay (the `read` policy of the
// project applies, as in WorldFS): directories list with sizes and times, a file shows its text
// (or says it is binary) and can be downloaded. Nothing here writes.
import { $, clock, download, el, reason, route } from './dom.js';
import { fleet } from './fleet.js';
import { listDir, readBytes } from './relay.js';

const PREVIEW_BYTES = 256 * 1024;

let generation = 0;

const join = (...parts) => parts.filter(Boolean).join('/');

function crumbs(nodeId, path) {
  const parts = path.split('/').filter(Boolean);
  return el(
    'nav',
    { class: 'crumbs' },
    el('a', { href: route('fs', nodeId, '') }, `${nodeId}/fs`),
    parts.map((part, i) => ['/', el('a', { href: route('fs', nodeId, parts.slice(0, i + 1).join('/')) }, part)]),
  );
}

async function preview(nodeId, path, name, target) {
  target.replaceChildren(el('p', { class: 'muted' }, `reading ${name}…`));
  let read;
  try {
    read = await readBytes(nodeId, `/fs/${path}`, PREVIEW_BYTES);
  } catch (error) {
    target.replaceChildren(el('p', { class: 'error', 'data-file': path }, `${path}: ${reason(error)}`));
    return;
  }
  let text = null;
  if (!read.bytes.includes(0)) {
    try {
      text = new TextDecoder('utf-8', { fatal: true }).decode(read.bytes);
    } catch {
      // Not UTF-8: shown as binary.
    }
  }
  target.replaceChildren(
    el(
      'h3',
      {},
      path,
      ' ',
      el('button', { type: 'button', class: 'download', onclick: () => download(name, new Blob([read.bytes])) }, 'Download'),
      read.truncated ? el('span', { class: 'muted' }, ` first ${PREVIEW_BYTES / 1024} KiB`) : null,
    ),
    text === null ? el('p', { class: 'muted binary' }, `binary, ${read.bytes.length} bytes shown`) : el('pre', { class: 'file-text', 'data-file': path }, text),
  );
}

/** Shows `path` (a directory under the node's fs/, '' for the exports) of `nodeId`. */
export async function openFs(nodeId, path) {
  const mine = ++generation;
  const body = $('fs-body');
  if (!nodeId) {
    $('fs-title').textContent = '';
    body.replaceChildren(
      el('p', {}, 'Pick a node:'),
      el(
        'ul',
        {},
        [...fleet.nodes.keys()].sort().map((id) => el('li', {}, el('a', { href: route('fs', id, '') }, id))),
      ),
    );
    return;
  }
  $('fs-title').textContent = `${nodeId}/fs/${path}`;
  const listing = el('div', { class: 'listing' }, el('p', { class: 'muted' }, 'listing…'));
  const shown = el('div', { id: 'fs-preview', class: 'preview' });
  body.replaceChildren(crumbs(nodeId, path), listing, shown);
  let entries;
  try {
    entries = await listDir(nodeId, `/fs${path ? `/${path}` : ''}`);
  } catch (error) {
    if (mine === generation) listing.replaceChildren(el('p', { class: 'error fs-error' }, `fs/${path}: ${reason(error)}`));
    return;
  }
  if (mine !== generation) return;
  listing.replaceChildren(
    entries.length === 0
      ? el('p', { class: 'muted' }, path ? 'empty directory' : 'no exports (the node runs without --export)')
      : el(
          'table',
          { class: 'fs-entries' },
          el('thead', {}, el('tr', {}, el('th', {}, 'name'), el('th', {}, 'size'), el('th', {}, 'modified (UTC)'))),
          el(
            'tbody',
            {},
            entries.map((entry) =>
              el(
                'tr',
                { 'data-name': entry.name, 'data-kind': entry.dir ? 'dir' : 'file' },
                el(
                  'td',
                  { class: 'name' },
                  entry.dir
                    ? el('a', { href: route('fs', nodeId, join(path, entry.name)) }, `${entry.name}/`)
                    : el(
                        'button',
                        { type: 'button', class: 'link', onclick: () => void preview(nodeId, join(path, entry.name), entry.name, shown) },
                        entry.name,
                      ),
                ),
                el('td', { class: 'size' }, entry.error ? reason(entry.error) : entry.dir ? '—' : String(entry.size)),
                el('td', { class: 'time' }, entry.error ? '' : `${new Date(entry.mtime_ms).toISOString().slice(0, 10)} ${clock(entry.mtime_ms)}`),
              ),
            ),
          ),
        ),
  );
}
