import { stat } from 'node:fs/promises';
import { join } from 'node:path';
import { openTokenStore } from '../control/control-store.js';
import type { ListedToken } from '../control/token-store.js';
import { TOKENS_FILE } from '../control/token-file.js';
import { checkIdentifier, UsageError } from './exit.js';
import { createLogger } from './logger.js';
import { etcdStoreOptions, JOIN_TTL_DEFAULT_MS, type StoreArgs } from './store-options.js';

export interface TokenArgs extends StoreArgs {
  'data-dir': string;
  user?: string | undefined;
  agent?: string | undefined;
  id?: string | undefined;
  'ttl-ms'?: number | undefined;
  json: boolean;
}

/** Actions that name no token: an id after them is a mistake (`token list extra`), not something to ignore. */
const WITHOUT_ID = new Set(['list', 'create', 'join']);

/**
 * `acheron token ...`: works on the store itself, also while servers run: the data dir (lock +
 * rename) or etcd (guarded transactions), where a change counts on every server at once.
 */
export async function runTokenCommand(action: string, args: TokenArgs, out: NodeJS.WritableStream, err: NodeJS.WritableStream): Promise<number> {
  checkArguments(action, args);
  const etcd = await etcdStoreOptions(args);
  if (!etcd) await checkTokenFile(args['data-dir']);
  const store = await openTokenStore({ dataDir: args['data-dir'], etcd }, (await createLogger({ level: 'error' })).log);
  try {
    return await run(action, args, { out, err }, store);
  } finally {
    await store.close();
  }
}

/** Mistakes in the command line are said before the store is opened (an unreachable etcd would hide them). */
function checkArguments(action: string, args: TokenArgs): void {
  if (WITHOUT_ID.has(action) && args.id !== undefined) throw new UsageError(`token ${action} takes no token id (got ${JSON.stringify(args.id)})`);
  // Taken and ignored, they read as done: `token create --ttl-ms 5` made a token that never expires.
  if (args['ttl-ms'] !== undefined && action !== 'join') throw new UsageError(`--ttl-ms is for token join (a join token's lifetime), not token ${action}`);
  for (const flag of ['user', 'agent'] as const)
    if (args[flag] !== undefined && action !== 'create') throw new UsageError(`--${flag} is for token create, not token ${action}`);
  if (action === 'create') {
    if (args.user === undefined) throw new UsageError('token create needs --user ID (1-128 characters of [A-Za-z0-9._-])');
    // Given but not an id: said so, with the value (it said `needs --user ID` as if none was given).
    checkIdentifier('--user', args.user);
    if (args.agent !== undefined) checkIdentifier('--agent', args.agent);
  }
  if (action === 'rotate' && !args.id) throw new UsageError('token rotate needs admin, user or a token id');
  if (action === 'revoke' && !args.id) throw new UsageError('token revoke needs a token id');
}

/**
 * The file store is the server's, made at its first start: a mistyped --data-dir must not become a
 * fresh store whose new admin token works nowhere.
 */
async function checkTokenFile(dataDir: string): Promise<void> {
  const path = join(dataDir, TOKENS_FILE);
  const found = await stat(path).catch(() => undefined);
  if (!found?.isFile())
    throw new UsageError(`--data-dir ${dataDir}: no ${TOKENS_FILE} there; start \`acheron control --data-dir ${dataDir}\` once to make it, or check the path`);
}

/** A join token's line in `token list`: when it expires, and whether it was used or has expired. */
function joinState(t: ListedToken, now = Date.now()): string {
  const expires = t.expires_ms ?? 0;
  return `expires ${new Date(expires).toISOString()}${t.used_ms ? ' (used)' : expires <= now ? ' (expired)' : ''}`;
}

async function run(
  action: string,
  args: TokenArgs,
  { out, err }: { out: NodeJS.WritableStream; err: NodeJS.WritableStream },
  store: Awaited<ReturnType<typeof openTokenStore>>,
): Promise<number> {
  switch (action) {
    case 'list': {
      const tokens = await store.list();
      // A server makes the first admin token at its first start: none at all is most likely a mistyped prefix.
      if (tokens.length === 0 && args.store === 'etcd')
        err.write(
          `acheron: warning: no tokens under --etcd-prefix ${args['etcd-prefix']} (a control server makes the first at its first start: is the prefix right?)\n`,
        );
      // The secrets of the tokens with ids `admin` and `user` (what `rotate admin|user` acts on), never
      // another holder's token of that role; null when that one was revoked. A live one whose secret is
      // not kept (etcd keeps a digest) is left out, as its entry's `token` is: null there read as revoked.
      const secretOf = (id: string): Record<string, string | null> => {
        const entry = tokens.find((e) => e.id === id);
        return entry === undefined ? { [id]: null } : entry.token === undefined ? {} : { [id]: entry.token };
      };
      const doc = { ...secretOf('admin'), ...secretOf('user'), tokens };
      if (args.json) out.write(JSON.stringify(doc, null, 2) + '\n');
      else
        for (const t of tokens) out.write(`${t.id}\t${t.role}\t${t.role === 'join' ? joinState(t) : (t.token ?? '(secret not kept: rotate for a new one)')}\n`);
      return 0;
    }
    case 'create': {
      const entry = await store.createUser(args.user as string, args.agent ?? null);
      out.write(args.json ? JSON.stringify(entry) + '\n' : `${entry.id}\n${entry.token}\n`);
      return 0;
    }
    case 'join': {
      const entry = await store.createJoin(args['ttl-ms'] ?? JOIN_TTL_DEFAULT_MS);
      out.write(args.json ? JSON.stringify(entry) + '\n' : `${entry.id} expires ${new Date(entry.expires_ms).toISOString()}\n${entry.token}\n`);
      return 0;
    }
    case 'rotate': {
      // A refusal of the store (TokenRefused: no such token, a join token) is a failure, exit 1, as `node get` of an unknown id.
      const entry = await store.rotate(args.id as string);
      out.write(args.json ? JSON.stringify(entry) + '\n' : `${entry.id}\n${entry.token}\n`);
      return 0;
    }
    case 'revoke': {
      // No such token, or the last admin one: TokenRefused, exit 1.
      await store.revoke(args.id as string);
      // Keyed `id` as the entries create, join and rotate print (`project delete` answers alike: {project_id, deleted}).
      out.write(args.json ? JSON.stringify({ id: args.id, revoked: true }) + '\n' : `revoked ${args.id}\n`);
      return 0;
    }
    default:
      throw new UsageError(`unknown token action ${JSON.stringify(action)} (list, create, join, rotate, revoke)`);
  }
}
