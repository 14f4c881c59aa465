import { text } from 'node:stream/consumers';
import { attachProject, connectClient } from './client-connection.js';
import { UsageError } from './exit.js';
import { parseJsonObject, readOptionFile } from './option-file.js';

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

/** The document of `project upsert [ID] --file F|-`; ID, when given, names the project the file must be (or become). */
async function readProjectDocument(args: ProjectArgs): Promise<Record<string, unknown>> {
  const file = args.file;
  if (!file) throw new UsageError('project upsert needs --file FILE (or - for stdin): {project_id, name?, token?, mounts?, access_policy?}');
  const source = file === '-' ? await text(process.stdin) : await readOptionFile('--file', file);
  if (source.trim() === '') throw new UsageError(`--file ${file}: empty; expected a JSON object {project_id, name?, token?, mounts?, access_policy?}`);
  const document = parseJsonObject(`--file ${file}`, source);
  const inFile = document.project_id;
  if (args.project_id === undefined) return document;
  if (inFile !== undefined && inFile !== args.project_id)
    throw new UsageError(`project upsert ${args.project_id}: --file ${file} is project ${JSON.stringify(inFile)}; name the same project, or leave one out`);
  return { ...document, project_id: args.project_id };
}

/** `acheron project list | get ID | upsert --file F|- | delete ID | rotate-token ID` (SPEC §8). */
export async function runProjectCommand(args: ProjectArgs, out: NodeJS.WritableStream): Promise<number> {
  const needId = (): string => {
    if (!args.project_id) throw new UsageError(`project ${args.action} needs a project id`);
    return args.project_id;
  };
  let request: [string, Record<string, unknown>];
  switch (args.action) {
    case 'list':
      if (args.project_id !== undefined) throw new UsageError(`project list takes no project id (got ${JSON.stringify(args.project_id)})`);
      request = ['control.project_list', {}];
      break;
    case 'get':
      request = ['control.project_get', { project_id: needId() }];
      break;
    case 'delete':
      request = ['control.project_delete', { project_id: needId() }];
      break;
    case 'rotate-token':
      request = ['control.project_token_rotate', { project_id: needId() }];
      break;
    case 'upsert': {
      request = ['control.project_upsert', await readProjectDocument(args)];
      break;
    }
    default:
      throw new UsageError(`unknown project action ${JSON.stringify(args.action)} (list, get, upsert, delete, rotate-token)`);
  }
  const client = await connectClient(args);
  try {
    await attachProject(client, args);
    const reply = await client.request(request[0], request[1]);
    out.write(JSON.stringify(reply, null, args.json ? 0 : 2) + '\n');
    return 0;
  } finally {
    await client.close();
  }
}
