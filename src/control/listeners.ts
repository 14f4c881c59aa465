import { createServer as createHttpServer, type Server } from 'node:http';
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
  if (!match || !match[1] || port > 65535) throw new TypeError(`${option} ${JSON.stringify(text)}: expected host:port`);
  // A URL's `ws://host` would pass as a host name and fail only at the bind, after the store opened.
  if (match[1].includes('/')) throw new TypeError(`${option} ${JSON.stringify(text)}: expected host:port without a scheme or path (e.g. 127.0.0.1:${port})`);
  return { host: match[1].replace(/^\[(.*)\]$/, '$1'), port, option };
}

/** Where the other servers reach this one: ws[s]://<listen host, or the host name for a wildcard>:<port>. */
export function advertiseUrlOf(listen: HostPort, isTls: boolean): string {
  const host = ['0.0.0.0', '::', ''].includes(listen.host) ? hostname() : listen.host.includes(':') ? `[${listen.host}]` : listen.host;
  return `${isTls ? 'wss' : 'ws'}://${host}:${listen.port}`;
}

/** An HTTP server, or an HTTPS one with `tls`. */
export function createListener(tls: { cert: string | Buffer; key: string | Buffer } | undefined): Server {
  return tls ? createHttpsServer({ cert: tls.cert, key: tls.key }) : createHttpServer();
}

/** Listens on `at`; a failure (EADDRINUSE, EACCES) names the option and address and keeps its code. */
export function listen(server: Server, at: HostPort): Promise<void> {
  return new Promise((resolve, reject) => {
    const failed = (error: NodeJS.ErrnoException): void => {
      const where = `${at.option ? `${at.option} ` : ''}${at.host}:${at.port}`;
      reject(
        Object.assign(
          new Error(`${where}: ${error.code === 'EADDRINUSE' ? 'address in use (another server listens there?)' : error.message}`, { cause: error }),
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
