import { createHash, randomBytes } from 'node:crypto';
import type { AccessPolicy, ProjectMount, ProjectPayload, PublicProject } from '../protocol/types.gen.js';
import { canonicalJson } from '../protocol/canonical-json.js';
import { ProtocolError } from '../protocol/errors.js';
import { sameSecret } from './token-store.js';

/**
 * Projects (SPEC §8) behind one interface: `FileProjectStore` keeps them in a StateJournal in the
 * data dir, `EtcdProjectStore` under `<prefix>projects/`. Reads are synchronous (policy checks run on
 * every request) from what the store holds in memory; writes go to the store first.
 */
export interface ProjectStore {
  /** The project, or `not_found` naming `/project_id`. */
  get(projectId: string): Project;
  find(projectId: string): Project | undefined;
  list(): PublicProject[];
  /** Creates or replaces a project; a given token replaces the old one, an absent one keeps it. */
  upsert(payload: ProjectPayload): Promise<PublicProject>;
  /** A new project token; only its hash is kept. */
  rotateToken(projectId: string): Promise<string>;
  delete(projectId: string): Promise<void>;
  /**
   * Calls `listener` with the id of each project changed from now on, here or (etcd) through another
   * server of the store: `deleted` (also one this server sees replaced by a project made again under
   * its id), `changed` in what its sessions may see, or `token`: a new token alone (`projectChange`).
   */
  onChange(listener: (projectId: string, change: ProjectChange) => void): void;
  close(): Promise<void>;
}

/** A project as stored: its token only as a hash. */
export interface Project {
  project_id: string;
  /**
   * Which project of this id it is: random, given when the project is made, kept by every change
   * after. A project deleted and made again under its id has another, so the sessions attached to
   * the old one stay refused (policy.ts `sessionProject`). Absent in projects stored before it was.
   */
  incarnation?: string;
  name: string;
  token_sha256: string | null;
  mounts: ProjectMount[];
  access_policy: AccessPolicy;
  updated_ms: number;
}

export type ProjectChange = 'deleted' | 'changed' | 'token';

/**
 * What a change from `before` to `after` (undefined: none) is to the project's sessions: deleted
 * (gone, or made again: another incarnation), changed (its nodes or policy, or a first token: they
 * may see otherwise), token (one token replaced by another, nodes and policy the same: only a
 * session attached with a project token may see otherwise, policy.ts `holdsProjectToken`), or
 * nothing to them (its name, or nothing at all).
 */
export function projectChange(before: Project | undefined, after: Project | undefined): ProjectChange | undefined {
  if (before === undefined) return undefined;
  if (after === undefined || after.incarnation !== before.incarnation) return 'deleted';
  // The nodes as a set (paths and order do not change what a session sees), the policy canonical.
  // Whether the project has a token at all is part of its policy: the mode of an unset action follows it (policy.ts `defaultMode`).
  const token = (p: Project): string | null => p.token_sha256 || null;
  const sight = (p: Project): string => canonicalJson([[...new Set(p.mounts.map((m) => m.node_id))].sort(), p.access_policy, token(p) !== null]);
  if (sight(after) !== sight(before)) return 'changed';
  return token(after) === token(before) ? undefined : 'token';
}

/** What clients see of a project (docs/schemas/control-replies.schema.json `public_project`). */
export type { PublicProject };

const hash = (token: string): string => createHash('sha256').update(token).digest('hex');

export const noProject = (projectId: string): ProtocolError => new ProtocolError('not_found', `no project ${projectId}`, { field: '/project_id' });

/** The project an upsert makes of `payload` over what exists: absent fields keep their values. */
export function mergeProject(payload: ProjectPayload, existing: Project | undefined): Project {
  return {
    project_id: payload.project_id,
    incarnation: existing ? existing.incarnation : randomBytes(12).toString('base64url'),
    name: payload.name ?? existing?.name ?? payload.project_id,
    token_sha256: payload.token === undefined ? (existing?.token_sha256 ?? null) : hash(payload.token),
    mounts: payload.mounts ?? existing?.mounts ?? [],
    access_policy: payload.access_policy ?? existing?.access_policy ?? {},
    updated_ms: Date.now(),
  };
}

/** A fresh project token, and the project that holds its hash. */
export function withNewToken(project: Project): { token: string; project: Project } {
  const token = `ach_project_${randomBytes(24).toString('base64url')}`;
  return { token, project: { ...project, token_sha256: hash(token), updated_ms: Date.now() } };
}

/** Whether `token` is this project's token (constant time). */
export function checkProjectToken(project: Project, token: string | undefined): boolean {
  return token !== undefined && project.token_sha256 !== null && sameSecret(project.token_sha256, hash(token));
}

/** Projects as `control.project_list` gives them: sorted by id, without token hashes. */
export function publicList(projects: Iterable<Project>): PublicProject[] {
  return [...projects].sort((a, b) => (a.project_id < b.project_id ? -1 : 1)).map(toPublic);
}

export function toPublic(project: Project): PublicProject {
  const { token_sha256: tokenHash, incarnation, ...rest } = project;
  return { ...rest, has_token: tokenHash !== null };
}
