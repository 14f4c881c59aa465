import type { Argv } from 'yargs';
import { parseControlUrls } from '../protocol/control-urls.js';
import { UsageError } from './exit.js';
import { readOptionFile } from './option-file.js';
import { tokenText } from '../protocol/token-text.js';
import type { TokenFile } from '../world/world-daemon.js';

export const DEFAULT_CONTROL_URL = 'ws://127.0.0.1:18790';

/** --control-url, --token, --token-file: shared by every command that talks to the control server. */
export function clientOptions<T>(y: Argv<T>) {
  return y
    .option('control-url', {
      type: 'string',
      describe: `control server; several (servers of one store): comma-separated or repeated, tried in turn (env ACHERON_CONTROL_URL; default ${DEFAULT_CONTROL_URL})`,
    })
    .option('token', { type: 'string', describe: 'bearer token (env ACHERON_TOKEN; prefer --token-file)' })
    .option('token-file', { type: 'string', describe: 'file holding the bearer token' })
    .option('project', { type: 'string', describe: 'attach this project session first (user tokens see only its nodes)' })
    .option('project-token-file', { type: 'string', describe: 'file holding the project token' })
    .option('json', { type: 'boolean', default: false, describe: 'print JSON' });
}

/** `--control-url` as given (once or repeated), or the environment's, or the default: the list of servers to try. */
export function controlUrls(given: string | readonly string[] | undefined, env: NodeJS.ProcessEnv = process.env): string[] {
  try {
    return parseControlUrls(given ?? env.ACHERON_CONTROL_URL ?? DEFAULT_CONTROL_URL);
  } catch (error) {
    throw new UsageError((error as Error).message);
  }
}

export async function resolveClient(
  args: {
    'control-url'?: string | readonly string[] | undefined;
    token?: string | undefined;
    'token-file'?: string | undefined;
    project?: string | undefined;
    'project-token-file'?: string | undefined;
  },
  env: NodeJS.ProcessEnv = process.env,
  warn: (text: string) => void = (text) => process.stderr.write(`acheron: warning: ${text}\n`),
): Promise<{ urls: string[]; token: string }> {
  // Said, not settled silently (warnings, not refusals: an fstab line or unit that has both mounted before, and must still).
  if (args['token-file'] !== undefined && args.token !== undefined) warn('--token is ignored: --token-file is given, and it is the one read');
  if (args['project-token-file'] !== undefined && args.project === undefined)
    warn('--project-token-file is ignored without --project ID (the project whose session it opens)');
  const urls = controlUrls(args['control-url'], env);
  const token = args['token-file']
    ? await tokenFile('--token-file', args['token-file']).read()
    : args.token !== undefined
      ? givenToken('--token', args.token)
      : env.ACHERON_TOKEN && givenToken('ACHERON_TOKEN', env.ACHERON_TOKEN);
  if (!token) throw new UsageError('a token is required: --token-file FILE, --token T or ACHERON_TOKEN');
  return { urls, token };
}

/**
 * A token given as text (`name`: the option or variable, or the file it was read from), trimmed and
 * checked: a line break in it would else fail every connection attempt as an invalid Authorization header.
 */
export function givenToken(name: string, text: string): string {
  const content = tokenText(text);
  if (!content.isUsable) throw new UsageError(`${name} ${content.problem}`);
  return content.token;
}

/** --project-token-file, read (a usage error naming the file when it cannot be). */
export async function readProjectToken(args: { 'project-token-file'?: string | undefined }): Promise<string | undefined> {
  if (!args['project-token-file']) return undefined;
  return tokenFile('--project-token-file', args['project-token-file']).read();
}

/** A file holding a token (`flag` names it in errors), read whenever asked: trimmed, one word, never empty. */
export function tokenFile(flag: string, path: string): TokenFile {
  return {
    path,
    read: async () => givenToken(`${flag} ${path}`, await readOptionFile(flag, path)),
  };
}
