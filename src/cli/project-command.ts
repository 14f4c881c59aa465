import { ACTIONS, defaultMode } from '../control/policy.js';
import type { ControlClient } from '../protocol/control-client.js';
import { oneLine } from '../protocol/schemas.js';
import type { ProjectDeleteReply, ProjectListReply, ProjectTokenReply, PublicProject } from '../protocol/types.gen.js';
import { attachProject, connectClient } from './client-connection.js';
import { checkIdentifier, UsageError } from './exit.js';
import { parseJsonObject, readOptionFile, readStdin } from './option-file.js';

export interface ProjectArgs {
  action: string;
  project_id?: string | undefined;
  file?: string | undefined;
  'control-url'?: string | readonly string[] | undefined;
  token?: string | undefined;
  'token-file'?: string | undefined;
  project?: string | undefined;
  'project-token-file'?: string | undefined;
  json: boolean;
}

/** What the server reports of a project but does not take back (`get --json` prints them): not part of an upsert. */
const REPORTED_ONLY = ['updated_ms', 'has_token'] as const;

/**
 * The document of `project upsert [ID] --file F|-`; ID, when given, names the project the file must be
 * (or become). `project get ID --json`, edited, is such a document: what only the server sets is left out.
 */
export async function readProjectDocument(args: ProjectArgs): Promise<Record<string, unknown>> {
  const file = args.file;
  if (!file) throw new UsageError('project upsert needs --file FILE (or - for stdin): {project_id, name?, token?, mounts?, access_policy?}');
  const source = file === '-' ? (await readStdin('--file -')).toString('utf8') : await readOptionFile('--file', file);
  if (source.trim() === '') throw new UsageError(`--file ${file}: empty; expected a JSON object {project_id, name?, token?, mounts?, access_policy?}`);
  const document = parseJsonObject(`--file ${file}`, source);
  for (const key of REPORTED_ONLY) delete document[key];
  const inFile = document.project_id;
  if (args.project_id === undefined) {
    // Else the server's schema error, exit 1, after a connection.
    if (inFile === undefined)
      throw new UsageError(
        `project upsert: --file ${file} has no project_id: add it to the file, or name the project (acheron project upsert <project_id> --file ${file})`,
      );
    return document;
  }
  if (inFile !== undefined && inFile !== args.project_id)
    throw new UsageError(`project upsert ${args.project_id}: --file ${file} is project ${JSON.stringify(inFile)}; name the same project, or leave one out`);
  return { ...document, project_id: args.project_id };
}

const time = (ms: number): string => new Date(ms).toISOString();

/** `project list`: a line per project, as `node list` prints nodes. */
export function formatProjectList({ projects }: ProjectListReply): string {
  const nodes = (p: PublicProject): string => [...new Set(p.mounts.map((m) => m.node_id))].join(',') || '-';
  const lines = projects.map((p) => `${p.project_id}\t${oneLine(p.name)}\t${p.has_token ? 'yes' : 'no'}\t${nodes(p)}\t${time(p.updated_ms)}\n`);
  return `PROJECT\tNAME\tTOKEN\tNODES\tUPDATED\n${lines.join('')}`;
}

/**
 * `project get` and `upsert`: the project, each action's mode (a default one says so: SPEC §8, the
 * server's own defaultMode), the agents' own modes and the nodes it mounts.
 */
export function formatProject(p: PublicProject): string {
  const modes = (set: PublicProject['access_policy']['actions'] = {}, defaults: boolean): string[] =>
    ACTIONS.flatMap((a) => (set[a] !== undefined ? [`${a} ${set[a]}`] : defaults ? [`${a} ${defaultMode(a, p.has_token)} (default)`] : []));
  const agents = Object.entries(p.access_policy.agents ?? {}).map(([agent, set]) => `  agent ${agent}: ${modes(set, false).join(', ') || 'as the project'}\n`);
  const mounts = p.mounts.map((m) => {
    const parts = [`node ${m.node_id}`];
    if (m.mount_path !== undefined) parts.push(`mount ${oneLine(m.mount_path)}`);
    if (m.export_name !== undefined) parts.push(`export ${oneLine(m.export_name)}`);
    return `  ${parts.join(', ')}\n`;
  });
  return (
    `project ${p.project_id}: name ${JSON.stringify(p.name)}, ${p.has_token ? 'token set' : 'no token'}, updated ${time(p.updated_ms)}\n` +
    `  actions: ${modes(p.access_policy.actions, true).join(', ')}\n` +
    agents.join('') +
    (mounts.join('') || '  no nodes\n')
  );
}

/** The new project token last, alone on its line (`| tail -1 > file`), as `token rotate` prints a token. */
export const formatProjectToken = ({ project_id, token }: ProjectTokenReply): string => `${project_id}\n${token}\n`;

/** `acheron project list | get ID | upsert --file F|- | delete ID | rotate-token ID` (SPEC §8): lines to read, or with --json the reply. */
export async function runProjectCommand(args: ProjectArgs, out: NodeJS.WritableStream): Promise<number> {
  const needId = (): string => {
    if (!args.project_id) throw new UsageError(`project ${args.action}: missing <project_id> (usage: acheron project ${args.action} <project_id>)`);
    // Before any connection, as `node get` checks its id (the server's refusal was exit 1).
    checkIdentifier('project_id', args.project_id);
    return args.project_id;
  };
  /** One request, and its output: the reply (checked against its schema on arrival: frameCheck), as lines or with --json as it came. */
  const exchange =
    <T>(type: string, payload: Record<string, unknown>, human: (reply: T) => string) =>
    async (client: ControlClient): Promise<string> => {
      const reply = await client.request<T>(type, payload);
      return args.json ? JSON.stringify(reply) + '\n' : human(reply);
    };
  let request: (client: ControlClient) => Promise<string>;
  switch (args.action) {
    case 'list':
      if (args.project_id !== undefined) throw new UsageError(`project list takes no project id (got ${JSON.stringify(args.project_id)})`);
      request = exchange<ProjectListReply>('control.project_list', {}, formatProjectList);
      break;
    case 'get':
      request = exchange<PublicProject>('control.project_get', { project_id: needId() }, formatProject);
      break;
    case 'delete':
      request = exchange<ProjectDeleteReply>('control.project_delete', { project_id: needId() }, (reply) => `deleted ${reply.project_id}\n`);
      break;
    case 'rotate-token':
      request = exchange<ProjectTokenReply>('control.project_token_rotate', { project_id: needId() }, formatProjectToken);
      break;
    case 'upsert': {
      request = exchange<PublicProject>('control.project_upsert', await readProjectDocument(args), formatProject);
      break;
    }
    default:
      throw new UsageError(`unknown project action ${JSON.stringify(args.action)} (list, get, upsert, delete, rotate-token)`);
  }
  const client = await connectClient(args);
  try {
    await attachProject(client, args);
    out.write(await request(client));
    return 0;
  } finally {
    await client.close();
  }
}
