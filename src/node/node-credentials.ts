import { readFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { writeFileAtomic } from '../store/atomic-file.js';
import { makeDirectory } from '../store/make-directory.js';

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

/** The node's credentials from an earlier join, when its state file holds them for this node id. */
export async function readNodeCredentials(stateFile: string, nodeId: string): Promise<NodeCredentials | undefined> {
  try {
    const saved = JSON.parse(await readFile(stateFile, 'utf8')) as Partial<NodeCredentials>;
    if (saved.node_id === nodeId && typeof saved.node_secret === 'string') return saved as NodeCredentials;
  } catch {
    // No credentials yet: join.
  }
  return undefined;
}

/** Keeps what a join gave, for every later connection (and restart) of the node. */
export async function saveNodeCredentials(stateFile: string, credentials: NodeCredentials): Promise<void> {
  await makeDirectory(dirname(stateFile));
  await writeFileAtomic(stateFile, JSON.stringify(credentials, null, 2) + '\n', 0o600);
}
