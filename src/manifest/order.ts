import { readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { problemAt, type Problem } from '../protocol/schemas.js';
import { messageOf } from './message-of.js';

/**
 * The manifest files to load, in load order (SPEC §2): the `--service-manifest` files in flag order, then
 * each `--services-dir`'s `*.json` regular files in byte order of name, without dot files (editor temps).
 */
export async function listManifestFiles(
  manifestFiles: string[],
  servicesDirs: string[],
): Promise<{ files: string[]; problems: Problem[] }> {
  const files = [...manifestFiles];
  const problems: Problem[] = [];
  for (const dir of servicesDirs) {
    const listed = await listServicesDir(dir);
    if ('problem' in listed) problems.push(listed.problem);
    else files.push(...listed.files);
  }
  return { files, problems };
}

async function listServicesDir(dir: string): Promise<{ files: string[] } | { problem: Problem }> {
  let entries;
  try {
    entries = await readdir(dir, { withFileTypes: true });
  } catch (error) {
    return { problem: problemAt(dir, '/', 'read', `cannot read services directory: ${messageOf(error)}`) };
  }
  // Byte order, not locale order: the same directory loads in the same order on every machine.
  const names = entries
    .filter((entry) => !entry.name.startsWith('.') && entry.name.endsWith('.json'))
    .sort((a, b) => Buffer.compare(Buffer.from(a.name), Buffer.from(b.name)));
  const files: string[] = [];
  for (const entry of names) {
    const file = join(dir, entry.name);
    // Directories, FIFOs (a read would block) and the like are not manifests, nor is a symlink to one;
    // a dangling symlink is kept so that its read failure is reported rather than the service vanishing.
    if (entry.isFile() || (entry.isSymbolicLink() && !(await leadsToNonFile(file)))) files.push(file);
  }
  return { files };
}

async function leadsToNonFile(path: string): Promise<boolean> {
  try {
    return !(await stat(path)).isFile();
  } catch {
    return false;
  }
}
