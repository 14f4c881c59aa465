import { admitsUser, type RelayOutcome } from '../protocol/relay.js';
import type { RelayPayload } from '../protocol/types.gen.js';
import type { Catalog } from './catalog.js';
import { refusal, type Action, type ProjectSession } from './policy.js';
import type { Principal } from './principal.js';
import type { ProjectStore } from './projects.js';

const O_ACCMODE = 3;
const O_TRUNC = 0o1000;
const CHANGES = new Set(['write', 'truncate', 'ftruncate', 'utimens', 'create', 'mkdir', 'unlink', 'rmdir', 'rename']);

/** Whether the operation changes something (a write-open counts: it is how writes begin). */
function changes(request: RelayPayload): boolean {
  return CHANGES.has(request.op) || (request.op === 'open' && (((request.flags ?? 0) & O_ACCMODE) !== 0 || ((request.flags ?? 0) & O_TRUNC) !== 0));
}

/**
 * What a relayed operation needs (SPEC §8): admins may do anything. A user session may reach only
 * the nodes its project mounts; live service files (`/services/<id>/...`) need `invoke` and a
 * service whose permissions admit the session (a hidden service is ENOENT, as in the listing);
 * `/fs/...` needs the node's fs service to admit the session, and `read` to look and `mount` to
 * change; a rename stays within the service or fs/ of its source. Returns the refusal as an outcome, or
 * undefined when allowed.
 */
export function relayRefusal(context: { principal: Principal; session: ProjectSession | undefined; projects: ProjectStore; catalog: Catalog }, request: RelayPayload): RelayOutcome | undefined {
  const { principal, session } = context;
  if (principal.kind === 'admin') return undefined;
  const denied = (errno: string, message: string): RelayOutcome => ({ ok: false, errno, message });
  if (principal.kind !== 'user' || !session) return denied('EACCES', 'relayed operations by users need a project session: control.session_attach first');
  const project = context.projects.find(session.projectId);
  if (!project || !project.mounts.some((m) => m.node_id === request.node_id)) return denied('ENOENT', `node ${request.node_id} is not in project ${session.projectId}`);
  const [top, serviceId] = request.path.split('/').filter(Boolean);
  // A rename stays where its source is: the same service's files, or the exports.
  if (request.to !== undefined) {
    const [toTop, toService] = request.to.split('/').filter(Boolean);
    if (toTop !== top || toService === undefined || (top === 'services' && toService !== serviceId)) return denied('EXDEV', `${request.to}: a rename must stay within ${top === 'services' ? `services/${serviceId}/` : 'fs/'}`);
  }
  const need = (action: Action): RelayOutcome | undefined => {
    const why = refusal(project, action, principal, session);
    return why ? denied('EACCES', why) : undefined;
  };
  if (top === 'services' && serviceId !== undefined) {
    const service = context.catalog.service(request.node_id, serviceId);
    if (!service) return denied('ENOENT', `no service ${serviceId} on node ${request.node_id}`);
    const refused = need('invoke');
    if (refused) return refused;
    return admitsUser(service.permissions, session.hasProjectToken) ? undefined : denied('ENOENT', `no service ${serviceId} on node ${request.node_id}`);
  }
  if (top === 'fs') {
    // The exports are the node's fs service: hidden from this session, they are absent.
    const exports = context.catalog.service(request.node_id, 'fs');
    if (!exports || !admitsUser(exports.permissions, session.hasProjectToken)) return denied('ENOENT', `node ${request.node_id} has no fs/ for this session`);
    return need(changes(request) ? 'mount' : 'read');
  }
  return denied('EACCES', `only services/<id>/ and fs/ are relayed, not ${request.path}`);
}

