import type { AccessMode, ActionModes } from '../protocol/types.gen.js';
import { ProtocolError } from '../protocol/errors.js';
import type { Principal } from './principal.js';
import { checkProjectToken, type Project } from './projects.js';

export type Action = keyof ActionModes;

/** A user connection's project session (control.session_attach). */
export interface ProjectSession {
  projectId: string;
  /** The hash of the project token the session presented (null: none); see holdsProjectToken. */
  tokenSha256: string | null;
}

/** The session `control.session_attach` opens; `unauthorized` when `token` is given and is not the project's. */
export function attachSession(project: Project, token: string | undefined): ProjectSession {
  if (token !== undefined && !checkProjectToken(project, token))
    throw new ProtocolError('unauthorized', `wrong project token for ${project.project_id}`, { field: '/project_token' });
  return { projectId: project.project_id, tokenSha256: token === undefined ? null : project.token_sha256 };
}

/**
 * Whether the session holds the project's token now (SPEC §8 `token` mode, `require_project_token`):
 * the token it presented is still the project's. Asked at every decision, of the project as the
 * store holds it, so a new token (rotated, upserted, or the project made again under its id), here
 * or through another server of the store, takes the right from the sessions of the old one at
 * once. Both hashes are the server's own (the presented token was checked at attach): a plain `===`.
 */
export function holdsProjectToken(project: Project, session: ProjectSession): boolean {
  return session.tokenSha256 !== null && session.tokenSha256 === project.token_sha256;
}

/**
 * The mode that governs `action` for this principal in this project (SPEC §8): a per-agent entry
 * wins over the project-level one; defaults are `admin` for the admin action, and `token` for the
 * others when the project has a token, else `open`.
 */
export function modeFor(project: Project, action: Action, agentId: string | null): AccessMode {
  const agent = agentId === null ? undefined : project.access_policy.agents?.[agentId]?.[action];
  return agent ?? project.access_policy.actions?.[action] ?? defaultMode(action, Boolean(project.token_sha256));
}

/** The mode of an action the project's policy leaves unset (SPEC §8): `admin` for the admin action, else `token` when the project has a token, `open` when not. */
export function defaultMode(action: Action, hasToken: boolean): AccessMode {
  return action === 'admin' ? 'admin' : hasToken ? 'token' : 'open';
}

/** Why `action` is refused, or undefined when allowed. Admin principals pass everything. */
export function refusal(project: Project, action: Action, principal: Principal, session: ProjectSession | undefined): string | undefined {
  if (principal.kind === 'admin') return undefined;
  if (principal.kind !== 'user') return `${principal.kind} connections have no project actions`;
  if (!session || session.projectId !== project.project_id) return `attach a session to project ${project.project_id} first (control.session_attach)`;
  const mode = modeFor(project, action, principal.agentId);
  switch (mode) {
    case 'open':
      return undefined;
    case 'token':
      return holdsProjectToken(project, session) ? undefined : `project ${project.project_id}: ${action} needs the project token (attach with project_token)`;
    case 'admin':
      return `project ${project.project_id}: ${action} is for admins only`;
    case 'deny':
      return `project ${project.project_id}: ${action} is denied${principal.agentId ? ` for agent ${principal.agentId}` : ''}`;
  }
}
