/** How `acheron control --store etcd` (and `acheron token --store etcd`) reach etcd. */
export interface EtcdOptions {
  /** `http(s)://host:port` of the members; a bare `host:port` gets http://, or https:// with a CA. */
  endpoints: string[];
  /** Every key Acheron writes starts with it (several deployments can share one etcd). */
  prefix: string;
  caCertFile?: string | undefined;
  certFile?: string | undefined;
  keyFile?: string | undefined;
  username?: string | undefined;
  passwordFile?: string | undefined;
  /** Deadline of each attempt of a unary call (etcd3 has none by default: a hung member hangs the call). */
  callTimeoutMs: number;
  /** How long start-up waits for etcd to answer before giving up with an error naming the endpoints. */
  startTimeoutMs: number;
}

export const ETCD_DEFAULTS = {
  prefix: '/acheron/',
  /** Below etcd's own 7 s stall after a leader dies, so a retry reaches the new leader. */
  callTimeoutMs: 1_500,
  startTimeoutMs: 10_000,
} as const;

/**
 * `--etcd-endpoints` → URLs. Throws a TypeError naming the option: each must be http or https
 * with a host and port and nothing else, all of one scheme (etcd3 refuses a mix).
 */
export function parseEndpoints(list: readonly string[], secure: boolean): string[] {
  const endpoints = list
    .flatMap((item) => item.split(','))
    .map((e) => e.trim())
    .filter(Boolean);
  if (endpoints.length === 0) throw new TypeError('--etcd-endpoints: at least one URL is needed (http://host:2379,...)');
  const urls = endpoints.map((endpoint) => {
    let url: URL;
    try {
      url = new URL(/^[a-z]+:\/\//i.test(endpoint) ? endpoint : `${secure ? 'https' : 'http'}://${endpoint}`);
    } catch {
      throw new TypeError(`--etcd-endpoints ${JSON.stringify(endpoint)}: not a URL (http://host:port)`);
    }
    if (
      !['http:', 'https:'].includes(url.protocol) ||
      !url.hostname ||
      !url.port ||
      (url.pathname !== '/' && url.pathname !== '') ||
      url.search ||
      url.username
    ) {
      throw new TypeError(`--etcd-endpoints ${JSON.stringify(endpoint)}: expected http(s)://host:port and nothing more`);
    }
    return `${url.protocol}//${url.host}`;
  });
  if (new Set(urls.map((u) => u.split(':')[0])).size > 1) throw new TypeError(`--etcd-endpoints ${endpoints.join(',')}: all http or all https, not a mix`);
  return urls;
}

/**
 * `--etcd-prefix`: ending in `/`, so it is never the start of a sibling deployment's keys
 * (`/acheron/` is not the start of `/acheron2/…`); `/` alone, the whole keyspace, is refused.
 */
export function checkPrefix(prefix: string): string {
  if (!prefix.endsWith('/') || prefix.length < 2)
    throw new TypeError(
      `--etcd-prefix ${JSON.stringify(prefix)}: must be a key prefix ending in "/" other than "/" alone (the whole keyspace), e.g. the default ${ETCD_DEFAULTS.prefix}`,
    );
  return prefix;
}

/** Options that only work together; a TypeError naming them otherwise. */
export function checkEtcdOptions(options: EtcdOptions): void {
  checkPrefix(options.prefix);
  if (Boolean(options.certFile) !== Boolean(options.keyFile)) throw new TypeError('--etcd-cert and --etcd-key go together');
  if (options.certFile && !options.caCertFile) throw new TypeError('--etcd-cert needs --etcd-cacert');
  if (Boolean(options.username) !== Boolean(options.passwordFile)) throw new TypeError('--etcd-username and --etcd-password-file go together');
  if (options.caCertFile && !options.endpoints.every((e) => e.startsWith('https:'))) throw new TypeError('--etcd-cacert needs https:// endpoints');
  for (const [name, value] of [
    ['--etcd-call-timeout-ms', options.callTimeoutMs],
    ['--etcd-start-timeout-ms', options.startTimeoutMs],
  ] as const) {
    if (!Number.isInteger(value) || value <= 0) throw new TypeError(`${name} ${value}: expected a positive integer`);
  }
}
