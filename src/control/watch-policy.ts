import { holdsProjectToken, refusal, sessionProject, type ProjectSession } from './policy.js';
import type { Principal } from './principal.js';
import { noProject, type ProjectStore } from './projects.js';
import { userSight } from './sight.js';
import type { WatchScope } from './watch-hub.js';

/** SPEC §8 role gates for watches: admins may by default, users may not. */
export interface WatchPolicy {
  allowAdmin: boolean;
  allowUser: boolean;
}

export function watchPolicyFromEnv(env: NodeJS.ProcessEnv = process.env): WatchPolicy {
  const flag = (name: string, fallback: boolean): boolean => {
    const raw = env[name]?.trim().toLowerCase();
    if (raw === undefined || raw === '') return fallback;
    return raw === '1' || raw === 'true' || raw === 'yes';
  };
  return {
    allowAdmin: flag('ACHERON_NODE_SERVICE_WATCH_ALLOW_ADMIN', true),
    allowUser: flag('ACHERON_NODE_SERVICE_WATCH_ALLOW_USER', false),
  };
}

/**
 * Who may watch and what they see (SPEC §8): admins everything (if the gate allows); users only
 * with the gate open, a project session, and `observe` and `read` allowed, and then with the session's sight
 * (sight.ts: the project's nodes while both allow, read live so a project change applies to
 * running watches, and only the services whose permissions admit the session). The subscription a
 * WorldFS mount keeps for itself (`purpose: "worldfs"`) passes the role gates, not the sight.
 */
export function watchAccess(
  principal: Principal,
  policy: WatchPolicy,
  session: ProjectSession | undefined,
  projects: ProjectStore,
  purpose?: 'worldfs',
): { refused: string } | WatchScope {
  const gated = purpose !== 'worldfs';
  if (principal.kind === 'admin')
    return policy.allowAdmin || !gated ? { sight: undefined } : { refused: 'admin watches are turned off (ACHERON_NODE_SERVICE_WATCH_ALLOW_ADMIN=false)' };
  if (principal.kind !== 'user') return { refused: `${principal.kind} connections do not watch the catalog` };
  if (!policy.allowUser && gated) return { refused: 'user watches are turned off: the server needs ACHERON_NODE_SERVICE_WATCH_ALLOW_USER=true' };
  // Said as the user met it: the subscription of a WorldFS mount is no watch to its user.
  if (!session)
    return { refused: `a user ${gated ? 'watch' : 'WorldFS mount'} needs a project session: control.session_attach {project_id, project_token?} first` };
  // Deleted since the attach (made again under its id or not): `not_found`, as the project ops answer.
  const project = sessionProject(projects, session);
  if (!project) throw noProject(session.projectId);
  // Events carry catalog metadata (node meta, service descriptors), which `read` guards: observe alone shows nothing.
  const why = refusal(project, 'observe', principal, session) ?? refusal(project, 'read', principal, session);
  if (why) return { refused: why };
  return {
    sight: userSight(principal, session, projects),
    projectId: session.projectId,
    projectGone: () => sessionProject(projects, session) === undefined,
    // A token already rotated away counts as none: another rotation changes nothing for this session.
    withProjectToken: holdsProjectToken(project, session),
  };
}
