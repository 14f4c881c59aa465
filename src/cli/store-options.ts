import { readEtcdFiles } from '../control/etcd/option-files.js';
import { ETCD_DEFAULTS, checkEtcdOptions, parseEndpoints, type EtcdOptions } from '../control/etcd/options.js';
import { UsageError } from './exit.js';
import { wholeNumberFlag } from './whole-number.js';

/** `acheron token join --ttl-ms`: an hour unless given. */
export const JOIN_TTL_DEFAULT_MS = 3_600_000;
/** A join token's longest life, ten years: longer ones are a mistake, and past year 275760 no date can show them. */
export const JOIN_TTL_MAX_MS = 10 * 365 * 86_400_000;

/** Where the control server keeps tokens and projects: shared by `acheron control` and `acheron token`. */
export const STORE_OPTIONS = {
  store: {
    type: 'string',
    choices: ['file', 'etcd'],
    default: 'file',
    describe: 'tokens and projects in the data dir (file) or in etcd, shared by every server on it',
  },
  'etcd-endpoints': { type: 'string', describe: 'etcd client URLs, comma-separated or repeated (http://10.0.0.1:2379,...)' },
  'etcd-prefix': { type: 'string', default: ETCD_DEFAULTS.prefix, describe: 'every etcd key Acheron writes starts with this' },
  'etcd-cacert': { type: 'string', describe: 'PEM CA bundle that signed the etcd servers (then https://)' },
  'etcd-cert': { type: 'string', describe: 'PEM client certificate for etcd' },
  'etcd-key': { type: 'string', describe: 'PEM client key for etcd' },
  'etcd-username': { type: 'string', describe: 'etcd user (with --etcd-password-file)' },
  'etcd-password-file': { type: 'string', describe: "file holding the etcd user's password" },
  'etcd-call-timeout-ms': {
    ...wholeNumberFlag('etcd-call-timeout-ms', { min: 1, unit: 'milliseconds' }),
    default: ETCD_DEFAULTS.callTimeoutMs,
    describe: 'deadline of each attempt of an etcd call',
  },
  'etcd-start-timeout-ms': {
    ...wholeNumberFlag('etcd-start-timeout-ms', { min: 1, unit: 'milliseconds' }),
    default: ETCD_DEFAULTS.startTimeoutMs,
    describe: 'give up starting when etcd has not answered by then',
  },
} as const;

export interface StoreArgs {
  store: string;
  'etcd-endpoints'?: string | string[] | undefined;
  'etcd-prefix': string;
  'etcd-cacert'?: string | undefined;
  'etcd-cert'?: string | undefined;
  'etcd-key'?: string | undefined;
  'etcd-username'?: string | undefined;
  'etcd-password-file'?: string | undefined;
  'etcd-call-timeout-ms': number;
  'etcd-start-timeout-ms': number;
}

/** The etcd options with `--store etcd`, undefined with `--store file`; a UsageError naming the option when they do not fit. */
export function etcdOptionsFrom(args: StoreArgs): EtcdOptions | undefined {
  if (args.store !== 'etcd') {
    if (args['etcd-endpoints'] !== undefined) throw new UsageError('--etcd-endpoints needs --store etcd');
    return undefined;
  }
  if (args['etcd-endpoints'] === undefined) throw new UsageError('--store etcd needs --etcd-endpoints URL[,URL...]');
  try {
    const list = Array.isArray(args['etcd-endpoints']) ? args['etcd-endpoints'] : [args['etcd-endpoints']];
    const options: EtcdOptions = {
      endpoints: parseEndpoints(list.map(String), args['etcd-cacert'] !== undefined),
      prefix: args['etcd-prefix'],
      caCertFile: args['etcd-cacert'],
      certFile: args['etcd-cert'],
      keyFile: args['etcd-key'],
      username: args['etcd-username'],
      passwordFile: args['etcd-password-file'],
      callTimeoutMs: args['etcd-call-timeout-ms'],
      startTimeoutMs: args['etcd-start-timeout-ms'],
    };
    checkEtcdOptions(options);
    return options;
  } catch (error) {
    throw new UsageError((error as Error).message);
  }
}

/**
 * etcdOptionsFrom, with the files those options name read before anything starts: one that cannot
 * be read, or is not PEM, is a UsageError naming the flag and the file (as a `--tls-cert` is).
 */
export async function etcdStoreOptions(args: StoreArgs): Promise<EtcdOptions | undefined> {
  const options = etcdOptionsFrom(args);
  if (options)
    await readEtcdFiles(options).catch((error: unknown) => {
      throw new UsageError((error as Error).message);
    });
  return options;
}
