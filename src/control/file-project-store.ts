import { createHash, randomBytes } from 'node:crypto';
import type { Logger } from 'pino';
import type { AccessPolicy, ProjectMount, ProjectPayload } from '../protocol/types.gen.js';
import { ProtocolError } from '../protocol/errors.js';
import { StateJournal } from '../store/state-journal.js';
import { sameSecret } from './token-store.js';

/** A project as stored: its token only as a hash. */
export interface Project {
  project_id: string;
  name: string;
  token_sha256: string | null;
  mounts: ProjectMount[];
  access_policy: AccessPolicy;
  updated_ms: number;
}

export type PublicProject = Omit<Project, 'token_sha256'> & { has_token: boolean };

const key = (projectId: string): string => `project/${projectId}`;
const hash = (token: string): string => createHash('sha256').update(token).digest('hex');

/** Projects (SPEC §8): which nodes a user session sees and what it may do there. */
export class ProjectStore {
  #projects = new Map<string, Project>();
  #journal: StateJournal;

  private constructor(journal: StateJournal) {
    this.#journal = journal;
  }

  static async open(path: string, log: Logger): Promise<ProjectStore> {
    const { journal, restored } = await StateJournal.open(path, { sync: 'always', log });
    const store = new ProjectStore(journal);
    for (const [k, value] of restored.values) if (k.startsWith('project/') && value && typeof value === 'object') store.#projects.set((value as Project).project_id, value as Project);
    return store;
  }

  get(projectId: string): Project {
    const project = this.#projects.get(projectId);
    if (!project) throw new ProtocolError('not_found', `no project ${projectId}`, { field: '/project_id' });
    return project;
  }

  find(projectId: string): Project | undefined {
    return this.#projects.get(projectId);
  }

  list(): PublicProject[] {
    return [...this.#projects.values()].sort((a, b) => (a.project_id < b.project_id ? -1 : 1)).map(toPublic);
  }

  /** Creates or replaces a project; a given token replaces the old one, an absent one keeps it. */
  async upsert(payload: ProjectPayload): Promise<PublicProject> {
    const existing = this.#projects.get(payload.project_id);
    const project: Project = {
      project_id: payload.project_id,
      name: payload.name ?? existing?.name ?? payload.project_id,
      token_sha256: payload.token === undefined ? (existing?.token_sha256 ?? null) : hash(payload.token),
      mounts: payload.mounts ?? existing?.mounts ?? [],
      access_policy: payload.access_policy ?? existing?.access_policy ?? {},
      updated_ms: Date.now(),
    };
    this.#projects.set(project.project_id, project);
    await this.#journal.set(key(project.project_id), project);
    return toPublic(project);
  }

  async rotateToken(projectId: string): Promise<string> {
    const project = this.get(projectId);
    const token = `ach_project_${randomBytes(24).toString('base64url')}`;
    const next = { ...project, token_sha256: hash(token), updated_ms: Date.now() };
    this.#projects.set(projectId, next);
    await this.#journal.set(key(projectId), next);
    return token;
  }

  async delete(projectId: string): Promise<void> {
    this.get(projectId);
    this.#projects.delete(projectId);
    await this.#journal.delete(key(projectId));
  }

  /** Whether `token` is this project's token (constant time). */
  checkToken(project: Project, token: string | undefined): boolean {
    return token !== undefined && project.token_sha256 !== null && sameSecret(project.token_sha256, hash(token));
  }

  close(): Promise<void> {
    return this.#journal.close();
  }
}

export function toPublic(project: Project): PublicProject {
  const { token_sha256: tokenHash, ...rest } = project;
  return { ...rest, has_token: tokenHash !== null };
}
