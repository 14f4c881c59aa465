import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Logger } from 'pino';
import { serveDebugPage } from './debug-page.js';
import type { ControlMetrics } from './metrics.js';
import type { Readiness } from './readiness.js';

/** What the HTTP listener's pages read. */
export interface HttpPagesContext {
  readiness(): Promise<Readiness>;
  metrics: ControlMetrics;
  /** The WebSocket listener's port, for the debug page. */
  wsPort(): number;
  log: Logger;
}

/** The HTTP listener: /livez, /readyz, /metrics, /metrics.json and the debug page (SPEC §10). A failing page is a 500 and a log line, never an unhandled rejection that ends the server. */
export function serveHttpPages(context: HttpPagesContext): (request: IncomingMessage, response: ServerResponse) => void {
  return (request, response) => {
    servePage(request, response, context).catch((error: unknown) => {
      context.log.error({ err: error, url: request.url }, 'HTTP request failed');
      if (!response.headersSent) response.writeHead(500, { 'content-type': 'text/plain' });
      response.end('internal error; see the server log\n');
    });
  };
}

async function servePage(request: IncomingMessage, response: ServerResponse, context: HttpPagesContext): Promise<void> {
  const target = request.url ?? '/';
  // Resolved against a base only when absolute-form: `//livez` would otherwise be read as a host.
  const path = new URL(target.startsWith('/') ? `http://x${target}` : target, 'http://x').pathname;
  const send = (status: number, type: string, body: string): void => void response.writeHead(status, { 'content-type': type }).end(body);
  // A client given this listener's URL instead of the WebSocket one: its refusal says where to go.
  if (request.headers.upgrade?.toLowerCase() === 'websocket')
    return send(
      400,
      'text/plain',
      `this is the HTTP listener (health, metrics, debug page): WebSocket clients connect to port ${context.wsPort()} (--listen)\n`,
    );
  // Every page is read-only.
  if (request.method !== 'GET' && request.method !== 'HEAD') {
    response.setHeader('allow', 'GET, HEAD');
    return send(405, 'text/plain', `${request.method ?? ''} not allowed on ${path}\n`);
  }
  switch (path) {
    case '/livez':
      return send(200, 'text/plain', 'ok\n');
    case '/readyz': {
      const { ready, checks } = await context.readiness();
      const lines = Object.entries(checks)
        .map(([name, result]) => `${name}: ${result}\n`)
        .join('');
      return send(ready ? 200 : 503, 'text/plain', `${ready ? 'ready' : 'not ready'}\n${lines}`);
    }
    case '/metrics':
      return send(200, context.metrics.registry.contentType, await context.metrics.registry.metrics());
    case '/metrics.json':
      return send(200, 'application/json', JSON.stringify(await context.metrics.json(), null, 2) + '\n');
    default:
      // SPEC §10 debug page: static files and config.json.
      if (path === '/debug' || path.startsWith('/debug/')) return serveDebugPage(request, response, path, { wsPort: context.wsPort() });
      return send(404, 'text/plain', `no such page: ${path}\n`);
  }
}
