import { createServer as createHttpServer, type Server } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { hostname } from 'node:os';

export interface HostPort {
  host: string;
  port: number;
}

/** `host:port` → HostPort; throws a TypeError naming the option. */
export function parseHostPort(text: string, option: string): HostPort {
  const match = /^(.*):(\d{1,5})$/.exec(text);
  const port = Number(match?.[2]);
  if (!match || !match[1] || port > 65535) throw new TypeError(`${option} ${JSON.stringify(text)}: expected host:port`);
  return { host: match[1].replace(/^\[(.*)\]$/, '$1'), port };
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

export function listen(server: Server, at: HostPort): Promise<void> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(at.port, at.host, () => {
      server.off('error', reject);
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
