import { TokenStore } from '../control/token-store.js';
import { isIdentifier } from '../protocol/identifier.js';
import { UsageError } from './exit.js';


/** `acheron token ...`: works on the data directory, also while the server runs (lock + rename). */
export async function runTokenCommand(action: string, args: { 'data-dir': string; user?: string | undefined; agent?: string | undefined; id?: string | undefined; 'ttl-ms': number; json: boolean }, out: NodeJS.WritableStream): Promise<number> {
  const store = await TokenStore.open(args['data-dir']);
  switch (action) {
    case 'list': {
      const { admin, users, join } = store.data;
      const doc = {
        admin: admin[0]?.token ?? null,
        user: users[0]?.token ?? null,
        tokens: [
          ...admin.map((e) => ({ id: e.id, role: 'admin', token: e.token })),
          ...users.map((e) => ({ id: e.id, role: 'user', user_id: e.user_id, agent_id: e.agent_id, token: e.token })),
          ...join.map((e) => ({ id: e.id, role: 'join', expires_ms: e.expires_ms, used_ms: e.used_ms })),
        ],
      };
      if (args.json) out.write(JSON.stringify(doc, null, 2) + '\n');
      else for (const t of doc.tokens) out.write(`${t.id}\t${t.role}\t${'token' in t ? t.token : `expires ${new Date(t.expires_ms).toISOString()}${t.used_ms ? ' (used)' : ''}`}\n`);
      return 0;
    }
    case 'create': {
      if (!args.user || !isIdentifier(args.user)) throw new UsageError('token create needs --user ID (1-128 characters of [A-Za-z0-9._-])');
      if (args.agent !== undefined && !isIdentifier(args.agent)) throw new UsageError('--agent: 1-128 characters of [A-Za-z0-9._-]');
      const entry = await store.createUser(args.user, args.agent ?? null);
      out.write(args.json ? JSON.stringify(entry) + '\n' : `${entry.id}\n${entry.token}\n`);
      return 0;
    }
    case 'join': {
      const entry = await store.createJoin(args['ttl-ms']);
      out.write(args.json ? JSON.stringify(entry) + '\n' : `${entry.id} expires ${new Date(entry.expires_ms).toISOString()}\n${entry.token}\n`);
      return 0;
    }
    case 'rotate': {
      if (!args.id) throw new UsageError('token rotate needs admin, user or a token id');
      const entry = await store.rotate(args.id).catch((error: Error) => {
        throw new UsageError(error.message);
      });
      out.write(args.json ? JSON.stringify(entry) + '\n' : `${entry.id}\n${entry.token}\n`);
      return 0;
    }
    case 'revoke': {
      if (!args.id) throw new UsageError('token revoke needs a token id');
      await store.revoke(args.id).catch((error: Error) => {
        throw new UsageError(error.message);
      });
      out.write(`revoked ${args.id}\n`);
      return 0;
    }
    default:
      throw new UsageError(`unknown token action ${JSON.stringify(action)} (list, create, join, rotate, revoke)`);
  }
}
