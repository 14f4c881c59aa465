/** The control server's defaults, apart from its code: the CLI's option table reads them without loading the server. */
export const CONTROL_DEFAULTS = {
  listen: '127.0.0.1:18790',
  httpListen: '127.0.0.1:18791',
  dataDir: './var/acheron-control',
  offlineGraceMs: 15_000,
  leaseTtlMs: 60_000,
  pingIntervalMs: 10_000,
} as const;

/** etcd: how long a dead server's registration (and its nodes' tunnels) outlive it. */
export const SERVER_TTL_MS = 5_000;
