import type { AccessMode, ActionModes } from '../protocol/types.gen.js';
import type { Principal } from './principal.js';
import type { Project } from './projects.js';

export type Action = keyof ActionModes;

/** A user connection's project session (control.session_attach). */
export interface ProjectSession {
  projectId: string;
  /** The session presented the project's token. */
  hasProjectToken: boolean;
}

/**
 * The mode that governs `action` for this principal in this project (SPEC §8): a per-agent entry
 * wins over the project-level one; defaults are `admin` for the admin action, and `token` for the
 * others when the project has a token, else `open`.
 */
export function modeFor(project: Project, action: Action, agentId: string | null): AccessMode {
  const agent = agentId === null ? undefined : project.access_policy.agents?.[agentId]?.[action];
  return agent ?? project.access_policy.actions?.[action] ?? (action === 'admin' ? 'admin' : project.token_sha256 ? 'token' : 'open');
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
      return session.hasProjectToken ? undefined : `project ${project.project_id}: ${action} needs the project token (attach with project_token)`;
    case 'admin':
      return `project ${project.project_id}: ${action} is for admins only`;
    case 'deny':
      return `project ${project.project_id}: ${action} is denied${principal.agentId ? ` for agent ${principal.agentId}` : ''}`;
  }
}
