import { connectAny, type ControlClient } from '../protocol/control-client.js';
import { readProjectToken, resolveClient } from './client-options.js';

/** With --project, attaches the connection's project session (SPEC §8) before anything else. */
export async function attachProject(client: ControlClient, args: { project?: string | undefined; 'project-token-file'?: string | undefined }): Promise<void> {
  if (args.project === undefined) return;
  const projectToken = await readProjectToken(args);
  await client.request('control.session_attach', { project_id: args.project, ...(projectToken === undefined ? {} : { project_token: projectToken }) });
}

/** A connection to the first of `--control-url`'s servers that answers (a few rounds, then `unavailable` naming each). */
export async function connectClient(args: Parameters<typeof resolveClient>[0]): Promise<ControlClient> {
  const { urls, token } = await resolveClient(args);
  return connectAny(urls, { token });
}
