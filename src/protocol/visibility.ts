import type { ActionModes, ServiceDescriptor } from './types.gen.js';

/**
 * SPEC §8 visibility, the one rule every place that shows a user session a node or a service
 * applies (the control server's catalog replies and watch events, its relay policy, WorldFS): a
 * session sees a node when its project mounts the node and allows the action that guards the
 * view (`read` for catalog replies, `observe` for watches, `invoke` for live service files), and a
 * service of that node when, in addition, the service's `permissions` admit the session. Admin
 * principals see everything. The control server and WorldFS know a session differently (the
 * project itself, or the grant `control.session_attach` answered), so each gives its `UserSight`.
 */

export type Action = keyof ActionModes;
export type ServicePermissions = ServiceDescriptor['permissions'];

/** A user session as the rule needs it. */
export interface UserSight {
  /** The session holds the project's token (the control server: still; WorldFS: as its grant said at attach). */
  readonly hasProjectToken: boolean;
  /** The session's project mounts the node. */
  mounts(nodeId: string): boolean;
  /** Why the project refuses `action` to this session, or undefined when it allows it. */
  refusal(action: Action): string | undefined;
}

/** Who looks: a user session, or undefined for an admin (who sees everything). */
export type Sight = UserSight | undefined;

/**
 * Whether a service's `permissions` admit a user session: `allow_roles` contains `user`, `*` or
 * `all`; otherwise a `deny` / `deny-by-default` default refuses; `require_project_token` refuses a
 * session without the project token.
 */
export function admitsUser(permissions: ServicePermissions, hasProjectToken: boolean): boolean {
  if (permissions.require_project_token === true && !hasProjectToken) return false;
  if ((permissions.allow_roles ?? []).some((role) => role === 'user' || role === '*' || role === 'all')) return true;
  return !/^deny/.test(permissions.default);
}

/** Whether the service's permissions admit the session (admins: always); the project's part is `seesNode`'s. */
export function admits(sight: Sight, permissions: ServicePermissions): boolean {
  return sight === undefined || admitsUser(permissions, sight.hasProjectToken);
}

/** Whether the session sees the node under `action`. */
export function seesNode(sight: Sight, nodeId: string, action: Action): boolean {
  return sight === undefined || (sight.mounts(nodeId) && sight.refusal(action) === undefined);
}

/** Whether the session sees the service of the node under `action`: hidden means absent (listings, ENOENT, `not_found`). */
export function seesService(sight: Sight, nodeId: string, permissions: ServicePermissions, action: Action): boolean {
  return seesNode(sight, nodeId, action) && admits(sight, permissions);
}
