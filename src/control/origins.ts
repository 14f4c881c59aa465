import { hostname, networkInterfaces } from 'node:os';
import { isWildcardHost } from './listeners.js';

/** A listener as bound: the configured host and the real port. */
export interface Listener {
  host: string;
  port: number;
}

const isLoopback = (host: string): boolean => host === 'localhost' || host === '::1' || /^127\.\d+\.\d+\.\d+$/.test(host);

/**
 * The origins of this server's own pages, for the browser (bearer subprotocol) Origin check (SPEC
 * §6): each listener's host names on its real port, with the scheme it serves (http, or https with
 * TLS), plus the `--allowed-origin` ones. A listener on a loopback address also answers to
 * `localhost`; one on every address (`0.0.0.0`, `::`) to the machine's host name and addresses.
 * The request's Host header is not consulted: a DNS-rebinding page gets its own name there.
 */
export function ownOrigins(listeners: readonly Listener[], isTls: boolean, allowed: readonly string[] = []): Set<string> {
  const scheme = isTls ? 'https' : 'http';
  const origins = new Set(allowed);
  for (const { host, port } of listeners) {
    for (const name of hostNames(host)) {
      try {
        origins.add(new URL(`${scheme}://${name.includes(':') ? `[${name}]` : name}:${port}`).origin);
      } catch {
        // A name no browser can put in an Origin (a scoped IPv6 address) cannot be one.
      }
    }
  }
  return origins;
}

function hostNames(host: string): string[] {
  const bare = host.replace(/^\[(.*)\]$/, '$1');
  if (isLoopback(bare)) return [bare, 'localhost'];
  if (!isWildcardHost(host)) return [bare];
  const addresses = Object.values(networkInterfaces()).flatMap((list) => (list ?? []).filter((a) => !a.scopeid).map((a) => a.address));
  return ['localhost', hostname(), ...addresses];
}

/** Whether a browser's Origin header names one of `origins` (an opaque or malformed one never does). */
export function isOwnOrigin(origins: ReadonlySet<string>, origin: string | undefined): boolean {
  if (!origin) return false;
  try {
    return origins.has(new URL(origin).origin);
  } catch {
    return false;
  }
}

/** `scheme://host[:port]` as a browser sends it in Origin (normalized); throws a TypeError naming the option. */
export function parseOrigin(text: string, option: string): string {
  let url: URL | undefined;
  try {
    url = new URL(text);
  } catch {
    url = undefined;
  }
  if (!url || !['http:', 'https:'].includes(url.protocol) || url.username || url.password || url.pathname !== '/' || /[?#]/.test(text)) {
    throw new TypeError(`${option} ${JSON.stringify(text)}: expected an origin, http[s]://host[:port] (no path)`);
  }
  return url.origin;
}
