import type { Principal } from './principal.js';

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

/** Why this principal may not watch, or undefined when it may. Projects (SPEC §8) are not built yet. */
export function watchRefusal(principal: Principal, policy: WatchPolicy): string | undefined {
  if (principal.kind === 'admin') return policy.allowAdmin ? undefined : 'admin watches are turned off (ACHERON_NODE_SERVICE_WATCH_ALLOW_ADMIN=false)';
  if (principal.kind === 'user') {
    if (!policy.allowUser) return 'user watches are turned off: the server needs ACHERON_NODE_SERVICE_WATCH_ALLOW_USER=true';
    return 'a user watch needs a project session (control.session_attach), which this server does not offer yet; use an admin token';
  }
  return `${principal.kind} connections do not watch the catalog`;
}
