import type { Logger } from 'pino';
import type { ProjectPayload } from '../protocol/types.gen.js';
import { StateJournal } from '../store/state-journal.js';
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
} from './projects.js';

const key = (projectId: string): string => `project/${projectId}`;

/** Projects in a StateJournal in the data dir (`projects.journal`), one key per project. */
export class FileProjectStore implements ProjectStore {
  #projects = new Map<string, Project>();
  #journal: StateJournal;
  #changeListeners: Array<(projectId: string, change: ProjectChange) => void> = [];

  private constructor(journal: StateJournal) {
    this.#journal = journal;
  }

  static async open(path: string, log: Logger): Promise<FileProjectStore> {
    const { journal, restored } = await StateJournal.open(path, { sync: 'always', log });
    const store = new FileProjectStore(journal);
    for (const [k, value] of restored.values)
      if (k.startsWith('project/') && value && typeof value === 'object') store.#projects.set((value as Project).project_id, value as Project);
    return store;
  }

  get(projectId: string): Project {
    const project = this.#projects.get(projectId);
    if (!project) throw noProject(projectId);
    return project;
  }

  find(projectId: string): Project | undefined {
    return this.#projects.get(projectId);
  }

  list(): PublicProject[] {
    return publicList(this.#projects.values());
  }

  async upsert(payload: ProjectPayload): Promise<PublicProject> {
    const project = mergeProject(payload, this.#projects.get(payload.project_id));
    await this.#set(project);
    return toPublic(project);
  }

  async rotateToken(projectId: string): Promise<string> {
    const { token, project } = withNewToken(this.get(projectId));
    await this.#set(project);
    return token;
  }

  async delete(projectId: string): Promise<void> {
    const before = this.get(projectId);
    this.#projects.delete(projectId);
    // Said also when the journal fails: sessions already see the project gone (it is, in memory).
    try {
      await this.#journal.delete(key(projectId));
    } finally {
      this.#changed(before, undefined);
    }
  }

  /** The journal's durabilityProblem. */
  durabilityProblem(): Promise<string | undefined> {
    return this.#journal.durabilityProblem();
  }

  onChange(listener: (projectId: string, change: ProjectChange) => void): void {
    this.#changeListeners.push(listener);
  }

  close(): Promise<void> {
    return this.#journal.close();
  }

  async #set(project: Project): Promise<void> {
    const before = this.#projects.get(project.project_id);
    this.#projects.set(project.project_id, project);
    try {
      await this.#journal.set(key(project.project_id), project);
    } finally {
      this.#changed(before, project);
    }
  }

  #changed(before: Project | undefined, after: Project | undefined): void {
    const change = projectChange(before, after);
    if (change && before) for (const listener of this.#changeListeners) listener(before.project_id, change);
  }
}
