import { createServer as createHttpServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { hostname } from 'node:os';

export interface HostPort {
  host: string;
  port: number;
  /** The option it was given with: a failure to listen there names it. */
  option?: string;
}

/** `host:port` → HostPort; throws a TypeError naming the option. */
export function parseHostPort(text: string, option: string): HostPort {
  const match = /^(.*):(\d{1,5})$/.exec(text);
  const port = Number(match?.[2]);
  if (!match || !match[1]) throw new TypeError(`${option} ${JSON.stringify(text)}: expected host:port`);
  if (port > 65535) throw new TypeError(`${option} ${JSON.stringify(text)}: port ${port} is out of range (0-65535)`);
  // A URL's `ws://host` would pass as a host name and fail only at the bind, after the store opened.
  if (match[1].includes('/')) throw new TypeError(`${option} ${JSON.stringify(text)}: expected host:port without a scheme or path (e.g. 127.0.0.1:${port})`);
  return { host: match[1].replace(/^\[(.*)\]$/, '$1'), port, option };
}

/** A listener on every address of the machine (`[::]` as a URL writes `::`): others reach it by the host name. */
export function isWildcardHost(host: string): boolean {
  return host === '0.0.0.0' || host === '::' || host === '[::]' || host === '';
}

/** Where the other servers reach this one: ws[s]://<listen host, or the host name for a wildcard>:<port>. */
export function advertiseUrlOf(listen: HostPort, isTls: boolean): string {
  const host = isWildcardHost(listen.host) ? hostname() : listen.host.includes(':') ? `[${listen.host}]` : listen.host;
  return `${isTls ? 'wss' : 'ws'}://${host}:${listen.port}`;
}

/** What a server id may hold (`--server-id`): it names the server in metrics labels and etcd keys. */
export const SERVER_ID_PATTERN = /^[A-Za-z0-9._:-]{1,128}$/;

/**
 * The server's id when `--server-id` is not given: `<hostname>:<port>` for a wildcard listener, else
 * `<hostname>:<listen host>:<port>`, so two servers of one machine on different addresses differ.
 * Made to fit SERVER_ID_PATTERN as one given by hand must: an IPv6 zone's `%` becomes `-`.
 */
export function defaultServerId(listen: HostPort): string {
  const id = isWildcardHost(listen.host) ? `${hostname()}:${listen.port}` : `${hostname()}:${listen.host}:${listen.port}`;
  return id.replace(/[^A-Za-z0-9._:-]/g, '-').slice(-128);
}

function answerStarting(_request: IncomingMessage, response: ServerResponse): void {
  response.writeHead(503, { 'content-type': 'text/plain' }).end('starting: opening the control store\n');
}

/**
 * A listener bound at `at` that answers 503 `starting` (upgrades too) until `takeOver`: bound
 * before the store opens, so a start that fails on a port in use has touched nothing in a shared
 * store (etcd: another server's registration under the same id).
 */
export async function bindStarting(tls: { cert: string | Buffer; key: string | Buffer } | undefined, at: HostPort): Promise<Server> {
  const server = createListener(tls);
  server.on('request', answerStarting);
  await listen(server, at);
  return server;
}

/** `handler` serves the requests of a listener from bindStarting from now on. */
export function takeOver(server: Server, handler: (request: IncomingMessage, response: ServerResponse) => void): void {
  server.off('request', answerStarting);
  server.on('request', handler);
}

/** An HTTP server, or an HTTPS one with `tls`. */
function createListener(tls: { cert: string | Buffer; key: string | Buffer } | undefined): Server {
  return tls ? createHttpsServer({ cert: tls.cert, key: tls.key }) : createHttpServer();
}

/** Listens on `at`; a failure (EADDRINUSE, EACCES) names the option and address and keeps its code. */
function listen(server: Server, at: HostPort): Promise<void> {
  return new Promise((resolve, reject) => {
    const failed = (error: NodeJS.ErrnoException): void => {
      const where = `${at.option ? `${at.option} ` : ''}${at.host}:${at.port}`;
      reject(
        Object.assign(
          new Error(`${where}: ${error.code === 'EADDRINUSE' ? 'address in use (EADDRINUSE: another server listens there?)' : error.message}`, {
            cause: error,
          }),
          { code: error.code },
        ),
      );
    };
    server.once('error', failed);
    server.listen(at.port, at.host, () => {
      server.off('error', failed);
      resolve();
    });
  });
}

export function boundAddress(server: Server): HostPort {
  const a = server.address() as AddressInfo;
  return { host: a.address, port: a.port };
}

/** Stops listening and ends every connection, idle or not. */
export function closeListener(server: Server): Promise<void> {
  return new Promise((resolve) => {
    server.close(() => resolve());
    server.closeAllConnections?.();
  });
}
