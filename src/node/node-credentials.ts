import { readFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import type { Logger } from 'pino';
import { jsonSyntaxError } from '../errors/json-document.js';
import { writeFileAtomic } from '../store/atomic-file.js';
import { makeDirectory, namingOption } from '../store/make-directory.js';
import { setAside } from '../store/set-aside.js';

/** `<state-file>`: the node's credentials from its join (SPEC §6), written atomically, mode 0600. */
export interface NodeCredentials {
  node_id: string;
  node_secret: string;
  control_url: string;
  joined_ms: number;
}

/** The bearer token a node connects with (SPEC §6): `node.<node_id>.<node_secret>`. */
export function nodeBearer(credentials: Pick<NodeCredentials, 'node_id' | 'node_secret'>): string {
  return `node.${credentials.node_id}.${credentials.node_secret}`;
}

/** What the state file holds for one node id: its credentials, none (not joined), or what is wrong with it. */
export type StoredCredentials = { credentials?: NodeCredentials; damage?: string };

/**
 * Reads the state file, changing nothing. Only a missing file, or one holding no credentials (or
 * another node's), means "not joined"; a file that is not a credentials record is
 * `damage`: treating it as "not joined" would let the next join overwrite it unseen. A file that
 * cannot be read (EACCES, EISDIR) throws, naming it (the errno code kept).
 */
export async function inspectNodeCredentials(stateFile: string, nodeId: string): Promise<StoredCredentials> {
  let text: string;
  try {
    text = await readFile(stateFile, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return {};
    throw namingOption('--state-file', stateFile, error);
  }
  let saved: unknown;
  try {
    saved = JSON.parse(text);
  } catch {
    // Where, never what: the parser's message quotes the text around the fault, the secret's bytes among it.
    return { damage: `is not JSON (${text.length} bytes; invalid JSON ${jsonSyntaxError(text)})` };
  }
  if (saved === null || typeof saved !== 'object' || Array.isArray(saved)) return { damage: 'is not a JSON object' };
  const record = saved as Partial<Record<keyof NodeCredentials, unknown>>;
  if (record.node_id === undefined && record.node_secret === undefined) return {};
  if (typeof record.node_id !== 'string') return { damage: 'has no node_id' };
  if (record.node_id !== nodeId) return {};
  if (typeof record.node_secret !== 'string' || record.node_secret === '') return { damage: `has no node_secret for ${nodeId}` };
  return { credentials: saved as NodeCredentials };
}

/**
 * The node's credentials from an earlier join, when its state file holds them for this node id. A
 * damaged file is set aside (`<file>.corrupt-<ms>`, as the runtime journal is) and logged at
 * `error`: the node then has not joined, and joins again with its join token.
 */
export async function readNodeCredentials(stateFile: string, nodeId: string, log: Logger): Promise<NodeCredentials | undefined> {
  const { credentials, damage } = await inspectNodeCredentials(stateFile, nodeId);
  if (damage === undefined) return credentials;
  const aside = await setAside(stateFile).catch((error: NodeJS.ErrnoException) => {
    // Set aside meanwhile by another reader of this daemon (it logged it).
    if (error.code === 'ENOENT') return undefined;
    throw namingOption('--state-file', stateFile, error);
  });
  if (aside === undefined) return undefined;
  log.error({ path: stateFile, aside }, `node credentials: ${stateFile} ${damage}; set aside as ${aside}; the node must join again`);
  return undefined;
}

/** Keeps what a join gave, for every later connection (and restart) of the node. */
export async function saveNodeCredentials(stateFile: string, credentials: NodeCredentials): Promise<void> {
  await makeDirectory(dirname(stateFile));
  await writeFileAtomic(stateFile, JSON.stringify(credentials, null, 2) + '\n', 0o600);
}
