import { ProtocolError } from '../../protocol/errors.js';
import type { EtcdOptions } from './options.js';

/** etcd's default --max-request-bytes: one transaction (a node's record with its whole catalog) must fit. */
export const ETCD_REQUEST_MAX_BYTES = 1_572_864;

/**
 * An etcd failure as the wire code `unavailable` (SPEC §6): a request the store could not serve is
 * refused, never acknowledged. For a write the outcome is unknown (etcd may still apply a request
 * that timed out), so the message says to read before trying again.
 */
export function storeUnavailable(error: unknown, what: string, write: boolean): ProtocolError {
  if (error instanceof ProtocolError) return error;
  if (isRequestTooLarge(error)) {
    return new ProtocolError(
      'payload_too_large',
      `control store (etcd): ${what} failed: ${describe(error)} (etcd takes at most --max-request-bytes, ${ETCD_REQUEST_MAX_BYTES} bytes by default, per request); nothing was written`,
      { cause: error },
    );
  }
  return new ProtocolError(
    'unavailable',
    `control store (etcd): ${what} failed: ${describe(error)}${write ? '; it may or may not have been applied, read before retrying' : ''}`,
    { cause: error },
  );
}

/** etcd's --max-request-bytes (1.5 MiB by default; its gRPC server refuses beyond that + 512 KiB): refused whole, nothing written. */
export function isRequestTooLarge(error: unknown): boolean {
  return /request is too large|received message larger than max/.test(describe(error));
}

/**
 * The first line of an error's message (gRPC details can span lines), without grpc-js's empty
 * "Resolution note:"; a refused or failed connection is the socket's error alone (`connect
 * ECONNREFUSED 127.0.0.1:2379`, not `14 UNAVAILABLE: No connection established. Last error: Error: …`).
 */
export function describe(error: unknown): string {
  const line = (error instanceof Error ? error.message : String(error)).split('\n')[0] ?? '';
  const trimmed = line.replace(/\s*Resolution note:\s*$/, '').trim();
  return /^14 UNAVAILABLE: No connection established\. Last error: (?:Error: )?(.+?)\.?$/.exec(trimmed)?.[1] ?? trimmed;
}

/**
 * What is wrong when etcd's answer at start (`why`: describe()d, the members' errors explained) is
 * one that trying again cannot change (credentials, permissions, an untrusted certificate), in words
 * naming the flag to fix; undefined for anything else (etcd down, no leader yet: worth waiting for).
 */
export function configurationProblem(why: string, options: EtcdOptions): string | undefined {
  const credentials = `--etcd-username ${options.username ?? '(none)'}, --etcd-password-file ${options.passwordFile ?? '(none)'}`;
  if (/user name is empty/.test(why)) return `etcd requires authentication: give --etcd-username and --etcd-password-file (etcd: ${why})`;
  if (/authentication failed|invalid auth token|user name not found/.test(why)) return `etcd refused the credentials (${credentials}): ${why}`;
  if (/PERMISSION_DENIED|permission denied/i.test(why))
    return `etcd user ${options.username ?? '(none)'} may not read --etcd-prefix ${options.prefix}: grant its role readwrite on it (etcdctl role grant-permission --prefix=true <role> readwrite ${options.prefix}): ${why}`;
  if (/altnames/.test(why))
    return `the etcd member's TLS certificate does not name the host of --etcd-endpoints (its subject alternative names): use a name or address it lists: ${why}`;
  if (/certificate has expired|not yet valid/.test(why)) return `the etcd member's TLS certificate is expired or not yet valid: renew it: ${why}`;
  if (/unable to verify|self[- ]signed certificate|local issuer certificate/.test(why))
    return `the etcd members' TLS certificate is not trusted with --etcd-cacert ${options.caCertFile ?? '(none: the system CAs)'} (is it the CA that signed them?): ${why}`;
  return undefined;
}
