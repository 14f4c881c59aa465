import type { AccessMode, ActionModes } from '../protocol/types.gen.js';
import { ProtocolError } from '../protocol/errors.js';
import type { Principal } from './principal.js';
import { checkProjectToken, noProject, type Project, type ProjectStore } from './projects.js';

export type Action = keyof ActionModes;

/** A user connection's project session (control.session_attach). */
export interface ProjectSession {
  projectId: string;
  /** The hash of the project token the session presented (null: none); see holdsProjectToken. */
  tokenSha256: string | null;
  /** The project's `incarnation` at the attach: the session is of that project only (see sessionProject). */
  incarnation: string | undefined;
}

/** The project actions (SPEC §8), in the order replies and the CLI list them. */
export const ACTIONS: readonly Action[] = ['read', 'observe', 'invoke', 'mount', 'admin'];

/** What `control.session_attach` opens: the session, and what each action answers it now (`allowed` or the refusal). */
export interface Attached {
  project: Project;
  session: ProjectSession;
  actions: Record<Action, string>;
}

/**
 * The session `control.session_attach` opens on `project` (undefined: no project has that id). An
 * admin gets the precise answer: `not_found`, or `unauthorized` for a wrong token. A user learns
 * nothing of a project that grants it nothing (SPEC §8: hidden means absent; project ids are not for
 * probing): without a token, an unknown id and a project where every action is refused to it answer
 * the same `not_found`; with one, an unknown id and a wrong token the same `unauthorized`. Each
 * answer depends on the request alone. The right token attaches even where nothing is allowed:
 * its holder knows the project.
 */
export function attachSession(projectId: string, project: Project | undefined, token: string | undefined, principal: Principal): Attached {
  const isAdmin = principal.kind === 'admin';
  if (token !== undefined && !(project && checkProjectToken(project, token))) {
    if (isAdmin && !project) throw noProject(projectId);
    const message = isAdmin ? `wrong project token for ${projectId}` : `no project ${projectId} with that project token`;
    throw new ProtocolError('unauthorized', message, { field: '/project_token' });
  }
  const unknown = (): ProtocolError =>
    isAdmin
      ? noProject(projectId)
      : new ProtocolError('not_found', `no project ${projectId} this session may use without a project token (check the id, or attach with project_token)`, {
          field: '/project_id',
        });
  if (!project) throw unknown();
  const session = { projectId, tokenSha256: token === undefined ? null : project.token_sha256, incarnation: project.incarnation };
  const verdict = (action: Action): string => refusal(project, action, principal, session) ?? 'allowed';
  const actions = Object.fromEntries(ACTIONS.map((action) => [action, verdict(action)])) as Record<Action, string>;
  if (token === undefined && ACTIONS.every((a) => actions[a] !== 'allowed')) throw unknown();
  return { project, session, actions };
}

/**
 * What a user is told of a project other than its session's, known or not (the project ops): the
 * same either way, so its ids cannot be probed. Admins get the precise answer from the store.
 */
export function notInSession(projectId: string): ProtocolError {
  return new ProtocolError('not_found', `no project ${projectId} in this session: attach a session to project ${projectId} first (control.session_attach)`, {
    field: '/project_id',
  });
}

/**
 * The project of the session as the store holds it now; undefined once it was deleted, also when a
 * project was made again under its id since: that is another project (another `incarnation`), one
 * the session must attach to again, as it would after the deletion alone. Asked at every decision,
 * so a deletion through another server of the store counts here as soon as this server has it.
 */
export function sessionProject(projects: Pick<ProjectStore, 'find'>, session: ProjectSession): Project | undefined {
  const project = projects.find(session.projectId);
  return project && isSessionOf(project, session) ? project : undefined;
}

/** Whether the session was attached to this project: its id, and the same incarnation of it. */
function isSessionOf(project: Project, session: ProjectSession): boolean {
  return session.projectId === project.project_id && session.incarnation === project.incarnation;
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
  if (!session || !isSessionOf(project, session)) return `attach a session to project ${project.project_id} first (control.session_attach)`;
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
