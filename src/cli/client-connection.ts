import { connectAny, QUICK_HANDSHAKE_MS } from '../protocol/connect-any.js';
import type { ControlClient } from '../protocol/control-client.js';
import { loadSchemas } from '../protocol/schemas.js';
import { ServerFrameCheck, type EventShape } from '../protocol/server-frames.js';
import type { SessionAttachReply } from '../protocol/types.gen.js';
import { readProjectToken, resolveClient } from './client-options.js';

// Loaded when a command runs, never at the CLI's start (ajv is among what this loads: architecture.test.ts).

/**
 * The check WorldFS and the node's control session make of every frame the server sends
 * (docs/schemas): a bad reply fails its request with an error naming the field, before the
 * command reads it. `events`: the shape of the command's watch events.
 */
export async function frameCheck(events: EventShape = 'delta'): Promise<ServerFrameCheck> {
  return new ServerFrameCheck(await loadSchemas(), { events });
}

/**
 * With --project, attaches the connection's project session (SPEC §8) before anything else: the
 * server's answer (what each action answers the session), or undefined without --project.
 */
export async function attachProject(
  client: ControlClient,
  args: { project?: string | undefined; 'project-token-file'?: string | undefined },
): Promise<SessionAttachReply | undefined> {
  if (args.project === undefined) return undefined;
  const projectToken = await readProjectToken(args);
  return client.request<SessionAttachReply>('control.session_attach', {
    project_id: args.project,
    ...(projectToken === undefined ? {} : { project_token: projectToken }),
  });
}

/** A connection to the first of `--control-url`'s servers that answers (a few rounds, then `unavailable` naming each). */
export async function connectClient(args: Parameters<typeof resolveClient>[0]): Promise<ControlClient> {
  const { urls, token } = await resolveClient(args);
  return connectAny(urls, { token, check: await frameCheck() }, { quickHandshakeMs: QUICK_HANDSHAKE_MS });
}
