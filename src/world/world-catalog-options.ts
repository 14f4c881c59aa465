import type { Logger } from 'pino';
import type { Schemas } from '../protocol/schemas.js';
import type { Attach } from './catalog-requests.js';

/** How a WorldFS mount follows the catalog (world-catalog.ts). */
export interface WorldCatalogOptions {
  /** The control servers to try in turn (servers of one store). */
  urls: readonly string[];
  /** The bearer token, or how to get it for each connection (a file read again). */
  token: string | (() => Promise<string>);
  /** Every frame the server sends is checked against docs/schemas before the catalog reads it. */
  schemas: Schemas;
  /** Attaches the project session on every new connection (users); resolves to its grant. */
  attach?: Attach;
  log: Logger;
  backoffMs?: number;
  backoffMaxMs?: number;
  /** Lease and last-seen times are not events: they are re-read this often. */
  refreshMs?: number;
}

/** The token for a new connection: a token file is read again each time. */
export function tokenFor(options: Pick<WorldCatalogOptions, 'token'>): Promise<string> {
  return typeof options.token === 'string' ? Promise.resolve(options.token) : options.token();
}
