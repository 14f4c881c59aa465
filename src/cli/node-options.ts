import { homedir, hostname } from 'node:os';
import { join } from 'node:path';
import { DEFAULT_BUSY_POLL_US, MAX_BUSY_POLL_US } from '../fuse/busy-poll.js';
import { UsageError } from './exit.js';
import { parseJsonObject, readOptionFile } from './option-file.js';
import { checkWholeNumber, type WholeNumberRule } from './whole-number.js';
import { LOG_OPTIONS } from './log-options.js';

/** `--busy-poll-us`, the same for `acheron node` and `acheron world` (see BusyPoll). */
export const BUSY_POLL_OPTION = {
  type: 'number',
  describe: `after answering a file operation, poll this long (µs, up to ${MAX_BUSY_POLL_US}) for the next one before sleeping, while such gaps are common; 0 = off`,
  default: DEFAULT_BUSY_POLL_US,
  whole: { min: 0, max: MAX_BUSY_POLL_US, unit: 'microseconds' },
} as const;

/**
 * `--allow-other`, `--default-permissions`, the same for `acheron node` and `acheron world`: libfuse's
 * options of those names (`allow_other`, `default_permissions` in mount -o and the config file).
 */
export const MOUNT_ACCESS_OPTIONS = {
  'allow-other': {
    type: 'boolean',
    describe:
      'let every user of the host use the mount, not only the one who mounted it (not root: needs user_allow_other in /etc/fuse.conf); add --default-permissions',
    default: false,
  },
  'default-permissions': {
    type: 'boolean',
    describe: "the kernel checks the mode bits shown (owner: the daemon's uid/gid) for every caller",
    default: false,
  },
} as const;

/**
 * Options of `acheron node`, in one table: yargs, the config file (snake_case keys) and mount -o
 * options all read it. Precedence: command line > mount -o > config file > defaults (SPEC §1).
 */
export const NODE_OPTION_SPECS = {
  'node-id': { type: 'string', describe: 'node id (default: host name)' },
  mount: { type: 'string', describe: 'mount point', default: '/mnt/acheron' },
  'service-manifest': { type: 'array', describe: 'a service manifest file (repeatable)' },
  'services-dir': { type: 'array', describe: 'a directory of *.json manifests (repeatable)' },
  export: { type: 'array', describe: 'export a directory under fs/: name=path[:ro|:rw] (repeatable)' },
  'fs-service': { type: 'boolean', describe: 'serve the built-in fs provider (--no-fs-service turns it off)', default: true },
  'terminal-id': { type: 'array', describe: 'add a terminal-<id> service (repeatable)' },
  label: { type: 'array', describe: 'node label key=value (repeatable)' },
  'control-url': {
    type: 'array',
    describe:
      'ws[s]://host:port of the control server (absent: standalone); several servers of one store: comma-separated or repeated (control_url= repeated in mount -o), tried in turn',
  },
  'join-token': { type: 'string', describe: 'single-use join token (prefer --join-token-file)' },
  'join-token-file': { type: 'string', describe: 'file holding the join token' },
  'state-file': { type: 'string', describe: 'node state file (default under /var/lib/acheron or $XDG_STATE_HOME)' },
  'manifest-reload-interval-ms': {
    type: 'number',
    describe: 'manifest reload interval; 0 = SIGHUP only',
    default: 2000,
    whole: { min: 0, unit: 'milliseconds' },
  },
  'reconnect-backoff-ms': { type: 'number', describe: 'first reconnect delay', default: 5000, whole: { min: 1, unit: 'milliseconds' } },
  'reconnect-backoff-max-ms': { type: 'number', describe: 'largest reconnect delay', default: 60000, whole: { min: 1, unit: 'milliseconds' } },
  'state-sync': { type: 'string', describe: 'always | batch', default: 'always', choices: ['always', 'batch'] },
  'busy-poll-us': BUSY_POLL_OPTION,
  ...MOUNT_ACCESS_OPTIONS,
  'shutdown-grace-ms': {
    type: 'number',
    describe: 'how long SIGTERM waits for running invocations (a second signal ends the wait)',
    default: 5000,
    whole: { min: 0, unit: 'milliseconds' },
  },
  'driver-user': { type: 'string', describe: 'as root: run drivers without runtime.user as this user (name or uid[:gid])' },
  ...LOG_OPTIONS,
  config: { type: 'string', describe: 'JSON config file (keys: the long flags in snake_case)' },
  daemon: { type: 'boolean', describe: 'detach and return once the tree is live', default: false },
  foreground: { type: 'boolean', describe: 'run in the foreground (the default; accepted for compatibility)', default: false },
} as const;

type Specs = typeof NODE_OPTION_SPECS;
export type NodeOptionName = keyof Specs;
export type NodeOptionValues = {
  [K in NodeOptionName]?: Specs[K]['type'] extends 'array'
    ? string[]
    : Specs[K]['type'] extends 'number'
      ? number
      : Specs[K]['type'] extends 'boolean'
        ? boolean
        : string;
};

const snake = (name: string): string => name.replace(/-/g, '_');
const byKey = new Map(Object.keys(NODE_OPTION_SPECS).map((name) => [snake(name), name as NodeOptionName]));
/** mount(8) adds these; they mean nothing to us. */
const MOUNT_GENERIC = new Set([
  'rw',
  'ro',
  'dev',
  'suid',
  'nodev',
  'nosuid',
  'exec',
  'noexec',
  'auto',
  'noauto',
  'user',
  'nouser',
  'defaults',
  'nofail',
  '_netdev',
  'atime',
  'noatime',
  'relatime',
]);

/** What mount(8) adds or leaves in, not ours to interpret: node and world mounts ignore these. */
export const isGenericMountOption = (key: string): boolean => MOUNT_GENERIC.has(key) || key.startsWith('x-');

/** A boolean option's value from any source: JSON's booleans, or text (a bare mount -o key is '', true). */
export function booleanValue(label: string, raw: unknown): boolean {
  if (typeof raw === 'boolean') return raw;
  if (raw === 'true' || raw === '1' || raw === '') return true;
  if (raw === 'false' || raw === '0') return false;
  throw new UsageError(`${label}: must be true or false`);
}

/**
 * A text option given no value (a bare `state_file` in mount -o, `--state-file ''`): refused, as its
 * absence is not meant. Taken as given, an empty path was the daemon's working directory (its journal
 * and log written there) and an empty `driver_user` ran drivers as root.
 */
const EMPTY = 'needs a value (empty given)';

/**
 * Coerces one raw value to an option's type: argv (yargs has typed it already), mount -o (text) and
 * the config file (JSON) all pass here, so each source refuses the same values. `label` names the
 * option as that source spells it.
 */
function coerce(name: NodeOptionName, raw: unknown, label: string): unknown {
  const spec: { type: string; choices?: readonly string[]; whole?: WholeNumberRule } = NODE_OPTION_SPECS[name];
  const fail = (rule: string): never => {
    throw new UsageError(`${label}: ${rule}`);
  };
  switch (spec.type) {
    case 'array': {
      const list = Array.isArray(raw) ? raw : [raw];
      return list.map((item) => (typeof item !== 'string' ? fail('must be a string or an array of strings') : item === '' ? fail(EMPTY) : item));
    }
    case 'number':
      return checkWholeNumber(label, raw, spec.whole as WholeNumberRule);
    case 'boolean':
      return booleanValue(label, raw);
    default:
      if (typeof raw !== 'string') fail('must be a string');
      if (raw === '' && !spec.choices) fail(EMPTY);
      if (spec.choices && !spec.choices.includes(raw as string)) fail(`must be one of ${spec.choices.join(', ')}`);
      return raw;
  }
}

/** A bare `no_<switch>` (`no_fs_service`, as `--no-fs-service` on the command line): that boolean option, turned off. */
function negatedSwitch(key: string): NodeOptionName | undefined {
  const name = key.startsWith('no_') ? byKey.get(key.slice(3)) : undefined;
  return name && NODE_OPTION_SPECS[name].type === 'boolean' ? name : undefined;
}

/**
 * How a node mount line spells a flag of `acheron node` (mount-line-terms.ts): `--join-token-file` is
 * `mount option join_token_file`, `--mount` the line's directory; another command's flag it has not.
 */
export function nodeLineSpelling(name: string): string | undefined {
  if (name === 'mount') return 'the mount point';
  return name in NODE_OPTION_SPECS ? `mount option ${snake(name)}` : undefined;
}

/**
 * Mount -o options: `services_dir=/x,node_id=a,rw,...`. Unknown ones are returned for a warning. One
 * given twice to say different things (`fs_service,no_fs_service`, two `node_id=`) is refused, as
 * in `--config`: an fstab typo must not flip a switch silently.
 */
export function parseMountOptions(text: string): { values: NodeOptionValues; unknown: string[] } {
  const values: Record<string, unknown> = {};
  const given: Record<string, string> = {};
  const unknown: string[] = [];
  const set = (name: string, value: unknown, item: string): void => {
    if (!Array.isArray(value) && name in values && values[name] !== value)
      throw new UsageError(`mount options ${given[name]} and ${item} contradict each other (give one)`);
    values[name] = Array.isArray(value) ? [...((values[name] as string[] | undefined) ?? []), ...value] : value;
    given[name] = item;
  };
  for (const item of text.split(',').filter(Boolean)) {
    const eq = item.indexOf('=');
    const key = eq < 0 ? item : item.slice(0, eq);
    const raw = eq < 0 ? '' : item.slice(eq + 1);
    if (isGenericMountOption(key)) continue;
    const negated = eq < 0 ? negatedSwitch(key) : undefined;
    if (negated) {
      set(negated, false, item);
      continue;
    }
    const name = byKey.get(key);
    if (!name) {
      unknown.push(item);
      continue;
    }
    set(name, coerce(name, raw, `mount option ${key}`), item);
  }
  return { values: values as NodeOptionValues, unknown };
}

export async function readConfigFile(path: string): Promise<NodeOptionValues> {
  const parsed = parseJsonObject(`--config ${path}`, await readOptionFile('--config', path));
  const values: Record<string, unknown> = {};
  // `no_<switch>` (`no_fs_service`, the snake_case of `--no-fs-service`) as the mount option takes it,
  // here with a boolean value; the switch itself may be given too, but not to say the opposite.
  for (const [key, raw] of Object.entries(parsed)) {
    const negated = negatedSwitch(key);
    const name = negated ?? byKey.get(key);
    if (!name) throw new UsageError(`--config ${path}: /${key}: unknown key (keys are the long flags in snake_case)`);
    const value = coerce(name, raw, `--config ${path}: /${key}`);
    const set = negated ? !value : value;
    if (name in values && values[name] !== set) {
      const other = negated ? snake(name) : `no_${key}`;
      throw new UsageError(`--config ${path}: /${key} and /${other} contradict each other (give one)`);
    }
    values[name] = set;
  }
  return values as NodeOptionValues;
}

/** Layers the sources, highest first; the first one that sets an option wins. */
export function mergeOptions(...layers: NodeOptionValues[]): NodeOptionValues {
  const merged: Record<string, unknown> = {};
  for (const layer of [...layers].reverse()) {
    for (const [name, value] of Object.entries(layer)) if (value !== undefined) merged[name] = value;
  }
  return merged as NodeOptionValues;
}

export function defaultOptions(): NodeOptionValues {
  const defaults: Record<string, unknown> = {};
  for (const [name, spec] of Object.entries(NODE_OPTION_SPECS)) if ('default' in spec) defaults[name] = spec.default;
  defaults['node-id'] = hostname();
  return defaults as NodeOptionValues;
}

/** `/var/lib/acheron/<node_id>.json` as root, else `$XDG_STATE_HOME/acheron/<node_id>.json`. */
/** /var/lib/acheron as root, else $XDG_STATE_HOME/acheron: state files and daemon logs. */
export function defaultStateDir(env: NodeJS.ProcessEnv = process.env): string {
  if (process.getuid?.() === 0) return '/var/lib/acheron';
  return join(env.XDG_STATE_HOME ?? join(homedir(), '.local', 'state'), 'acheron');
}

export function defaultStateFile(nodeId: string, env: NodeJS.ProcessEnv = process.env): string {
  return join(defaultStateDir(env), `${nodeId}.json`);
}

/** `--busy-poll-us` of `acheron world` (as given: yargs' AS_GIVEN, text from mount -o); `acheron node` checks it with its other options. */
export function busyPollWindow(given: number | string | undefined): number {
  return given === undefined ? DEFAULT_BUSY_POLL_US : checkWholeNumber('--busy-poll-us', given, BUSY_POLL_OPTION.whole);
}

/** The options given on the command line (yargs has typed them), checked as mount -o and config values are. */
function checkArgvOptions(given: NodeOptionValues): NodeOptionValues {
  const checked: Record<string, unknown> = {};
  for (const [name, value] of Object.entries(given)) checked[name] = value === undefined ? value : coerce(name as NodeOptionName, value, `--${name}`);
  return checked as NodeOptionValues;
}

/** Options only a node with a control server reads: given without one, the node ran standalone and never used them. */
const CONTROL_ONLY_OPTIONS: readonly NodeOptionName[] = ['join-token', 'join-token-file', 'reconnect-backoff-ms', 'reconnect-backoff-max-ms'];

/**
 * Refuses a control-only option without `--control-url`, named as its source spells it (a config
 * key; a mount line's flags are renamed by inMountLineTerms), as `--etcd-endpoints` needs `--store etcd`.
 */
function checkControlOnly(given: NodeOptionValues, config: NodeOptionValues, configPath: string | undefined): void {
  if (given['control-url'] !== undefined || config['control-url'] !== undefined) return;
  const name = CONTROL_ONLY_OPTIONS.find((option) => given[option] !== undefined || config[option] !== undefined);
  if (name === undefined) return;
  const why = 'without one the node runs standalone and never uses it';
  if (given[name] === undefined) throw new UsageError(`--config ${configPath}: /${snake(name)} needs --control-url or /control_url (${why})`);
  throw new UsageError(`--${name} needs --control-url (${why})`);
}

/** Resolves every source of options into daemon options (precedence: argv > -o > config > defaults). */
export async function resolveNodeOptions(argv: NodeOptionValues, mountOptions: NodeOptionValues = {}): Promise<NodeOptionValues> {
  const configPath = argv.config ?? mountOptions.config;
  const config = configPath ? await readConfigFile(configPath) : {};
  const given = mergeOptions(checkArgvOptions(argv), mountOptions);
  checkControlOnly(given, config, configPath);
  return mergeOptions(given, config, defaultOptions());
}
