import type { ProjectPayload } from '../../protocol/types.gen.js';
import {
  mergeProject,
  noProject,
  projectChange,
  publicList,
  toPublic,
  withNewToken,
  type Project,
  type ProjectChange,
  type ProjectStore,
  type PublicProject,
} from '../projects.js';
import type { EtcdConnection } from './connection.js';
import { storedObject, transact, type TxnRead } from './guarded-txn.js';
import { PrefixMirror } from './prefix-mirror.js';

const PROJECTS = 'projects/';

function decodeProject(value: Buffer, key: string): Project | undefined {
  const object = storedObject(value)?.object;
  if (!object || object.project_id !== key || typeof object.name !== 'string' || !Array.isArray(object.mounts)) return undefined;
  return object as unknown as Project;
}

/**
 * Projects in etcd under `<prefix>projects/<project_id>`, shared by every server on it. Reads come
 * from a mirror that follows the prefix (policy checks are synchronous); every change is a guarded
 * read-modify-write, and returns once this server's mirror holds it (read-your-writes).
 */
export class EtcdProjectStore implements ProjectStore {
  #connection: EtcdConnection;
  #mirror: PrefixMirror<Project>;
  #waitMs: number;

  private constructor(connection: EtcdConnection, mirror: PrefixMirror<Project>, waitMs: number) {
    this.#connection = connection;
    this.#mirror = mirror;
    this.#waitMs = waitMs;
  }

  /** `waitMs`: how long a write waits for the mirror to show it before answering anyway (it is committed). */
  static async open(connection: EtcdConnection, waitMs: number): Promise<EtcdProjectStore> {
    return new EtcdProjectStore(connection, await PrefixMirror.open(connection, PROJECTS, decodeProject), waitMs);
  }

  get(projectId: string): Project {
    const project = this.#mirror.get(projectId);
    if (!project) throw noProject(projectId);
    return project;
  }

  find(projectId: string): Project | undefined {
    return this.#mirror.get(projectId);
  }

  list(): PublicProject[] {
    return publicList(this.#mirror.values());
  }

  async upsert(payload: ProjectPayload): Promise<PublicProject> {
    const project = await this.#change(payload.project_id, `upserting project ${payload.project_id}`, async (current) => mergeProject(payload, current));
    return toPublic(project as Project);
  }

  async rotateToken(projectId: string): Promise<string> {
    let token = '';
    await this.#change(projectId, `rotating the token of project ${projectId}`, async (current) => {
      if (!current) throw noProject(projectId);
      const rotated = withNewToken(current);
      token = rotated.token;
      return rotated.project;
    });
    return token;
  }

  async delete(projectId: string): Promise<void> {
    await this.#change(projectId, `deleting project ${projectId}`, async (current, attempt) => {
      // Gone on a later attempt: our own first attempt committed, or another delete did.
      if (!current && attempt === 0) throw noProject(projectId);
      return undefined;
    });
  }

  onChange(listener: (projectId: string, change: ProjectChange) => void): void {
    this.#mirror.onChange((changes) => {
      // A deletion and the project made again under its id come as one change when the mirror lists the prefix again (compaction).
      for (const { key, before, after } of changes) {
        const change = projectChange(before, after);
        if (change) listener(key, change);
      }
    });
  }

  close(): Promise<void> {
    return this.#mirror.close();
  }

  /** One guarded read-modify-write of a project (`next` undefined: delete it); waits until the mirror has it. */
  async #change(
    projectId: string,
    what: string,
    next: (current: Project | undefined, attempt: number) => Promise<Project | undefined>,
  ): Promise<Project | undefined> {
    const key = this.#connection.key(PROJECTS + projectId);
    const { result, revision } = await transact(this.#connection, what, async (read: TxnRead, attempt) => {
      const value = await read(key);
      const current = value && decodeProject(value, projectId);
      const project = await next(current, attempt);
      if (project === undefined) return { writes: current ? [{ key, delete: true as const }] : [], result: undefined };
      return { writes: [{ key, value: { ...project } }], result: project };
    });
    if (revision > 0n && !(await this.#mirror.waitFor(revision, this.#waitMs))) {
      this.#connection.log.warn(
        { project_id: projectId, revision: String(revision) },
        "a project change is committed in etcd but not yet seen by this server's watch",
      );
    }
    return result;
  }
}
