import { booleanValue, BUSY_POLL_OPTION, isGenericMountOption, MOUNT_ACCESS_OPTIONS, NODE_OPTION_SPECS } from './node-options.js';
import { LOG_LEVELS, LOG_OPTIONS } from './log-options.js';
import { UsageError } from './exit.js';
import { AS_GIVEN, checkWholeNumber } from './whole-number.js';

/** `acheron world` options; the mount helper's `-o` keys are the same names in snake_case. */
export const WORLD_OPTIONS = {
  'control-url': {
    type: 'string',
    describe:
      'control server; several (servers of one store): comma-separated or repeated, tried in turn (env ACHERON_CONTROL_URL; default ws://127.0.0.1:18790)',
  },
  token: { type: 'string', describe: 'bearer token (env ACHERON_TOKEN; prefer --token-file)' },
  'token-file': { type: 'string', describe: 'file holding the bearer token' },
  project: { type: 'string', describe: 'attach this project session (user tokens)' },
  'project-token-file': { type: 'string', describe: 'file holding the project token' },
  mount: { type: 'string', default: '/mnt/acheron-world', describe: 'mount point' },
  subtree: { type: 'string', choices: ['nodes'], describe: 'mount only nodes/ (on /nodes: ls /nodes/*/services)' },
  // Taken as given, as every whole-number flag (AS_GIVEN): busyPollWindow checks it and shows it when refused.
  'busy-poll-us': { describe: BUSY_POLL_OPTION.describe, default: BUSY_POLL_OPTION.default, ...AS_GIVEN },
  ...MOUNT_ACCESS_OPTIONS,
  ...LOG_OPTIONS,
  daemon: { type: 'boolean', default: false, describe: 'detach and return once the tree is live' },
  foreground: NODE_OPTION_SPECS.foreground,
} as const;

export interface WorldArgs {
  'control-url'?: string | readonly string[] | undefined;
  token?: string | undefined;
  'token-file'?: string | undefined;
  project?: string | undefined;
  'project-token-file'?: string | undefined;
  mount?: string | undefined;
  subtree?: string | undefined;
  /** As given (yargs: a number or text, AS_GIVEN; mount -o: text); busyPollWindow checks it. */
  'busy-poll-us'?: number | string | undefined;
  'allow-other'?: boolean | undefined;
  'default-permissions'?: boolean | undefined;
  'log-level'?: string | undefined;
  'log-file'?: string | undefined;
  daemon?: boolean | undefined;
  /** Accepted as `acheron node` accepts it (SPEC §1); the foreground is the default anyway. */
  foreground?: boolean | undefined;
}

/** `-o` keys of a `world:<url>` mount (snake_case of the long options); the URL comes from the source. */
const MOUNT_KEYS = new Set(['token', 'token_file', 'project', 'project_token_file', 'subtree', 'busy_poll_us', 'log_level', 'log_file']);
/** `-o` keys that are switches: bare (`allow_other`) or `=true|false`. */
const MOUNT_SWITCHES = new Set(Object.keys(MOUNT_ACCESS_OPTIONS).map((name) => name.replace(/-/g, '_')));

/** mount -t fuse.acheron world:ws://host:port[,ws://host:port...] <dir> -o token_file=...,project=... */
export function worldMountArgs(source: string, dir: string, optionText: string, env: NodeJS.ProcessEnv = process.env): { args: WorldArgs; unknown: string[] } {
  const args: Record<string, unknown> = { 'control-url': source.slice('world:'.length), mount: dir, daemon: true };
  const unknown: string[] = [];
  for (const option of optionText.split(',').filter(Boolean)) {
    const eq = option.indexOf('=');
    const key = eq < 0 ? option : option.slice(0, eq);
    if (isGenericMountOption(key)) continue;
    const name = key.replace(/_/g, '-');
    if (MOUNT_SWITCHES.has(key)) args[name] = booleanValue(`mount option ${key}`, eq < 0 ? '' : option.slice(eq + 1));
    else if (MOUNT_KEYS.has(key) && eq >= 0) args[name] = mountValue(key, option.slice(eq + 1));
    else unknown.push(option);
  }
  // Said here in the line's terms: the command would ask for --token-file, which a mount line does not have.
  if (args.token === undefined && args['token-file'] === undefined && !env.ACHERON_TOKEN)
    throw new UsageError('a world: mount needs mount option token_file=FILE (the file holding its token)');
  return { args: args as WorldArgs, unknown };
}

/**
 * How a `world:` mount line spells a flag of `acheron world` (mount-line-terms.ts): its -o options by
 * their keys, the control URL as the line's source, `--mount` as its directory.
 */
export function worldLineSpelling(name: string): string | undefined {
  const key = name.replace(/-/g, '_');
  if (name === 'control-url') return "the mount source's URL";
  if (name === 'mount') return 'the mount point';
  return MOUNT_KEYS.has(key) || MOUNT_SWITCHES.has(key) ? `mount option ${key}` : undefined;
}

/**
 * A `-o` value checked here, named as the mount line spells it (as `acheron node`'s are): the
 * command's own checks would name the flag (`--busy-poll-us`), which the line does not have.
 */
function mountValue(key: string, raw: string): string | number {
  const label = `mount option ${key}`;
  if (raw === '') throw new UsageError(`${label}: needs a value (empty given)`);
  if (key === 'busy_poll_us') return checkWholeNumber(label, raw, BUSY_POLL_OPTION.whole);
  if (key === 'subtree' && raw !== 'nodes') throw new UsageError(`${label} ${JSON.stringify(raw)}: the only subtree is nodes`);
  if (key === 'log_level' && !(LOG_LEVELS as readonly string[]).includes(raw)) throw new UsageError(`${label}: must be one of ${LOG_LEVELS.join(', ')}`);
  return raw;
}
