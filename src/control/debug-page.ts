import { readFile } from 'node:fs/promises';
import type { IncomingMessage, ServerResponse } from 'node:http';

/** web/debug/ beside dist/ (and beside src/ when run from source): the same two levels up. */
const PAGE_DIR = new URL('../../web/debug/', import.meta.url);
/** The JSON Schemas the console checks editors against (config.json), served as they are in docs/. */
const SCHEMA_DIR = new URL('../../docs/schemas/', import.meta.url);
const SCHEMA_PREFIX = 'schemas/';

const CONTENT_TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
};

/** One plain file name: no separators, no dot segments, no escapes, so nothing outside PAGE_DIR. */
const FILE_NAME = /^[A-Za-z0-9][A-Za-z0-9_-]*(\.[A-Za-z0-9_-]+)*$/;

/**
 * The page holds an admin token: no framing by other sites, no scripts but its own, and ws/wss to
 * any host (the control listener is another port, named by config.json).
 */
const HEADERS = {
  'cache-control': 'no-store',
  'x-content-type-options': 'nosniff',
  'content-security-policy':
    "default-src 'self'; connect-src 'self' ws: wss:; img-src 'self' data:; frame-ancestors 'none'; base-uri 'none'; form-action 'none'",
  'referrer-policy': 'no-referrer',
};

export interface DebugPageOptions {
  /** The WebSocket listener's port: the page connects to it on the host it was loaded from. */
  wsPort: number;
}

/**
 * SPEC §10: `/debug` (index.html), `/debug/<file>` from web/debug/, `/debug/schemas/<file>` from
 * docs/schemas/, and `/debug/config.json`, which tells the page where the WebSocket listener is.
 * Unknown files are 404; names that try to leave the directory are 400.
 */
export async function serveDebugPage(request: IncomingMessage, response: ServerResponse, path: string, options: DebugPageOptions): Promise<void> {
  const send = (status: number, type: string, body: string | Buffer): void => {
    response.writeHead(status, { ...HEADERS, 'content-type': type, 'content-length': Buffer.byteLength(body) });
    response.end(request.method === 'HEAD' ? undefined : body);
  };
  const name = path === '/debug' || path === '/debug/' ? 'index.html' : path.slice('/debug/'.length);
  if (name === 'config.json') return send(200, 'application/json', JSON.stringify({ ws_port: options.wsPort }) + '\n');
  const [dir, file] = name.startsWith(SCHEMA_PREFIX) ? [SCHEMA_DIR, name.slice(SCHEMA_PREFIX.length)] : [PAGE_DIR, name];
  if (!FILE_NAME.test(file)) return send(400, 'text/plain', `bad file name: ${JSON.stringify(name)}\n`);
  const dot = file.lastIndexOf('.');
  const type = dot < 0 ? undefined : CONTENT_TYPES[file.slice(dot)];
  if (!type || (dir === SCHEMA_DIR && !file.endsWith('.schema.json'))) return send(404, 'text/plain', `no such file: ${path}\n`);
  let body: Buffer;
  try {
    body = await readFile(new URL(file, dir));
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    // A missing file is 404; anything else says what failed.
    return code === 'ENOENT' ? send(404, 'text/plain', `no such file: ${path}\n`) : send(500, 'text/plain', `cannot read ${name}: ${code ?? String(error)}\n`);
  }
  return send(200, type, body);
}
