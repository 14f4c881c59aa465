import type { RelayOutcome, RelayPayload } from '../protocol/types.gen.js';
import { admits, type Action, type ServicePermissions, type UserSight } from '../protocol/visibility.js';
import type { CatalogStore, EventStream } from './catalog-store.js';
import { sessionProject, type ProjectSession } from './policy.js';
import type { Principal } from './principal.js';
import { opensToChange } from '../errors/open-flags.js';
import type { ProjectStore } from './projects.js';
import { userSight } from './sight.js';

const CHANGES = new Set([
  'write',
  'truncate',
  'ftruncate',
  'utimens',
  'chmod',
  'chown',
  'mknod',
  'mkdir',
  'unlink',
  'rmdir',
  'rename',
  'symlink',
  'invoke',
  'stage',
  'reject',
]);

/** Whether the operation changes something (a write-open counts: it is how writes begin). */
function changes(request: RelayPayload): boolean {
  return CHANGES.has(request.op) || (request.op === 'open' && opensToChange(request.flags ?? 0));
}

/** What the catalog says of one service for one session: not there, hidden by its permissions, or admitted. */
type Admission = 'absent' | 'hidden' | 'admitted';

/**
 * What a relayed operation needs (SPEC §8): admins may do anything. A user session may reach only
 * the nodes its project mounts; live service files (`/services/<id>/...`) need `invoke` and a
 * service whose permissions admit the session (a hidden service is ENOENT, as in the listing);
 * `/fs/...` needs the node's fs service to admit the session, and `read` to look and `mount` to
 * change; a rename stays within the service or fs/ of its source.
 *
 * A service's permissions are kept per (node, service) until that node's catalog changes (any
 * event of the node), so the chunks of one payload do not parse the descriptor again each. What
 * depends on the session (do those permissions admit it, does its project allow the action) is
 * decided every time, from the project as it is now: a session whose project token was replaced
 * loses the token's rights at its next operation, and no decision kept for it says otherwise.
 */
export class RelayPolicy {
  readonly #catalog: CatalogStore;
  readonly #projects: ProjectStore;
  #permissions = new Map<string, Map<string, ServicePermissions>>();

  constructor(catalog: CatalogStore, projects: ProjectStore, events: Pick<EventStream, 'onEvent' | 'onGap'>) {
    this.#catalog = catalog;
    this.#projects = projects;
    events.onEvent((event) => this.#permissions.delete(event.node_id));
    events.onGap(() => this.#permissions.clear());
  }

  /** The refusal as an outcome, or undefined when allowed. */
  refusal(principal: Principal, session: ProjectSession | undefined, request: RelayPayload): RelayOutcome | undefined {
    if (principal.kind === 'admin') return undefined;
    const denied = (errno: string, message: string): RelayOutcome => ({ ok: false, errno, message });
    if (principal.kind !== 'user' || !session) return denied('EACCES', 'relayed operations by users need a project session: control.session_attach first');
    // SPEC §8's rule (src/protocol/visibility.ts), with the reason of each refusal.
    if (!sessionProject(this.#projects, session)) return denied('ENOENT', `project ${session.projectId} no longer exists`);
    const sight = userSight(principal, session, this.#projects);
    if (!sight.mounts(request.node_id)) return denied('ENOENT', `node ${request.node_id} is not in project ${session.projectId}`);
    const [top, serviceId] = request.path.split('/').filter(Boolean);
    // A rename stays where its source is: the same service's files, or the exports.
    if (request.to !== undefined) {
      const [toTop, toService] = request.to.split('/').filter(Boolean);
      if (toTop !== top || toService === undefined || (top === 'services' && toService !== serviceId))
        return denied('EXDEV', `${request.to}: a rename must stay within ${top === 'services' ? `services/${serviceId}/` : 'fs/'}`);
    }
    const need = (action: Action): RelayOutcome | undefined => {
      const why = sight.refusal(action);
      return why ? denied('EACCES', why) : undefined;
    };
    if (top === 'services' && serviceId !== undefined) {
      const admission = this.#admission(sight, request.node_id, serviceId);
      // A service its permissions hide is absent whatever the project allows: a refusal naming the
      // action would tell the session it exists.
      if (admission !== 'admitted') return denied('ENOENT', `no service ${serviceId} on node ${request.node_id}`);
      return need('invoke');
    }
    if (top === 'fs') {
      // The exports are the node's fs service: hidden from this session, they are absent.
      if (this.#admission(sight, request.node_id, 'fs') !== 'admitted') return denied('ENOENT', `node ${request.node_id} has no fs/ for this session`);
      return need(changes(request) ? 'mount' : 'read');
    }
    return denied('EACCES', `only services/<id>/ and fs/ are relayed, not ${request.path}`);
  }

  #admission(sight: UserSight, nodeId: string, serviceId: string): Admission {
    let byService = this.#permissions.get(nodeId);
    if (!byService) this.#permissions.set(nodeId, (byService = new Map()));
    let permissions = byService.get(serviceId);
    if (!permissions) {
      // Absence is not kept: any name may be asked for, and finding none parses nothing.
      permissions = this.#catalog.service(nodeId, serviceId)?.permissions;
      if (!permissions) return 'absent';
      byService.set(serviceId, permissions);
    }
    return admits(sight, permissions) ? 'admitted' : 'hidden';
  }
}
