// A node's own files through the control server's relay (`control.relay`, SPEC §9), the path and
// the policy WorldFS uses: the server refuses what the session may not do (the reason travels as
// the message of an errno), the node runs the rest against its own tree. Nothing here retries.
import { request } from './conn.js';

const O_RDONLY = 0;
const O_WRONLY = 1;
const O_RDWR = 2;
/** The relay moves at most 256 KiB per read or write. */
const CHUNK = 256 * 1024;

/** Request ids are unique per page load: the node answers a repeated one from its table. */
const prefix = `c${Date.now().toString(36)}${Math.random().toString(36).slice(2, 6)}`;
let nextRequest = 1;

const utf8 = new TextDecoder();

/** One relayed operation: its result, or an Error with `code` the errno and the node's or server's reason. */
export async function relay(nodeId, op, path, fields = {}) {
  const outcome = await request('control.relay', { node_id: nodeId, request_id: `${prefix}-${nextRequest++}`, op, path, ...fields });
  if (!outcome.ok) throw Object.assign(new Error(outcome.message || outcome.errno), { code: outcome.errno });
  return outcome.result ?? {};
}

function toBase64(bytes) {
  let binary = '';
  for (const byte of bytes) binary += String.fromCharCode(byte);
  return btoa(binary);
}

function fromBase64(data) {
  const binary = atob(data ?? '');
  const bytes = new Uint8Array(binary.length);
  for (let i = 0; i < binary.length; i += 1) bytes[i] = binary.charCodeAt(i);
  return bytes;
}

/** Reads from an open handle until end of file or `max` bytes; the handle stays open. */
async function readAll(nodeId, path, fh, max) {
  const parts = [];
  let total = 0;
  for (;;) {
    const { data } = await relay(nodeId, 'read', path, { fh, offset: total, length: Math.min(CHUNK, max - total) });
    const bytes = fromBase64(data);
    if (bytes.length === 0) break;
    parts.push(bytes);
    total += bytes.length;
    if (total >= max) break;
  }
  const all = new Uint8Array(total);
  let at = 0;
  for (const part of parts) {
    all.set(part, at);
    at += part.length;
  }
  return all;
}

/** Opens, runs `use(fh)`, and releases whatever happened (a release error is not the caller's). */
async function withHandle(nodeId, path, flags, use) {
  const { fh } = await relay(nodeId, 'open', path, { flags });
  try {
    return await use(fh);
  } finally {
    await relay(nodeId, 'release', path, { fh }).catch(() => undefined);
  }
}

/** A file's bytes (at most `max`), as `{bytes, truncated}`. */
export async function readBytes(nodeId, path, max = 1024 * 1024) {
  const bytes = await withHandle(nodeId, path, O_RDONLY, (fh) => readAll(nodeId, path, fh, max + 1));
  return { bytes: bytes.subarray(0, max), truncated: bytes.length > max };
}

/** A file's text (UTF-8). */
export async function readText(nodeId, path, max) {
  return utf8.decode((await readBytes(nodeId, path, max)).bytes);
}

/** Writes `text` from offset 0 in relay-sized chunks. */
async function writeAll(nodeId, path, fh, text) {
  const data = new TextEncoder().encode(text);
  for (let at = 0; at < data.length; at += CHUNK) {
    await relay(nodeId, 'write', path, { fh, offset: at, data: toBase64(data.subarray(at, at + CHUNK)) });
  }
}

/**
 * Writes `text` and closes: a control file acts on the write, `config.json` commits at the flush
 * (its refusal, EINVAL with the reason, comes from there).
 */
export async function writeText(nodeId, path, text) {
  await withHandle(nodeId, path, O_WRONLY, async (fh) => {
    await writeAll(nodeId, path, fh, text);
    await relay(nodeId, 'flush', path, { fh });
  });
}

/**
 * The O_RDWR transaction on `control/invoke.json` (docs/node-tree.md): write the payload, read the
 * same handle, which commits, waits for that invocation and returns its outcome. A failure reads
 * back exactly `{error, state, invocation_id, status}` with this service's status: `state` is how
 * this invocation ended, status.json's state the service's.
 */
export async function invoke(nodeId, serviceId, payloadText) {
  const path = `/services/${serviceId}/control/invoke.json`;
  const text = await withHandle(nodeId, path, O_RDWR, async (fh) => {
    await writeAll(nodeId, path, fh, payloadText);
    return utf8.decode(await readAll(nodeId, path, fh, 16 * 1024 * 1024));
  });
  let doc;
  try {
    doc = JSON.parse(text);
  } catch {
    return { ok: true, text };
  }
  const keys = doc && typeof doc === 'object' ? Object.keys(doc).sort().join() : '';
  // A node of an earlier version answers {error, status} alone: the service's state is all it says.
  const earlier = keys === 'error,status';
  const failed =
    (earlier || (keys === 'error,invocation_id,state,status' && ['error', 'timeout', 'cancelled'].includes(doc.state))) &&
    typeof doc.error === 'string' &&
    doc.status?.service_id === serviceId;
  return failed ? { ok: false, text, error: doc.error, state: earlier ? String(doc.status.state) : doc.state } : { ok: true, text, doc };
}

/** A directory's entries with their stat: `[{name, dir, size, mtime_ms}]`, directories first. */
export async function listDir(nodeId, path) {
  const { names } = await relay(nodeId, 'list', path);
  const base = path.endsWith('/') ? path : `${path}/`;
  const entries = await Promise.all(
    names.map(async (name) => {
      try {
        const attr = await relay(nodeId, 'stat', base + name);
        return { name, dir: (Number(attr.mode) & 0o170000) === 0o040000, size: Number(attr.size), mtime_ms: Number(attr.mtime_ms) };
      } catch (error) {
        return { name, dir: false, error };
      }
    }),
  );
  return entries.sort((a, b) => (a.dir === b.dir ? (a.name < b.name ? -1 : 1) : a.dir ? -1 : 1));
}
