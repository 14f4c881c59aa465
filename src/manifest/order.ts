import { readdir } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { problemAt, type Problem } from '../protocol/schemas.js';
import { messageOf } from './message-of.js';

/**
 * The manifest files to load, in load order (SPEC §2): the `--service-manifest` files in flag order, then
 * each `--services-dir`'s `*.json` entries in byte order of name, without dot files (editor temps). SPEC
 * says regular files: an entry that is not one is listed anyway and refused by name when loaded.
 */
export async function listManifestFiles(manifestFiles: string[], servicesDirs: string[]): Promise<{ files: string[]; problems: Problem[] }> {
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
  // Every such name is listed, whatever it is: loading one that is not a regular file (a directory, a
  // FIFO, a symlink to /dev/null) reports it, so a service never vanishes without a word.
  return { files: names.map((entry) => join(dir, entry.name)) };
}

/**
 * The first of `problems` about the manifest file `source`: one of that file, or of a services
 * directory holding it that cannot be read (renamed during a deploy, an NFS hiccup: a problem of
 * the directory, whose services stay as they were, not removed with their state).
 */
export function problemOfSource(problems: readonly Problem[], source: string): Problem | undefined {
  const file = resolve(source);
  return problems.find((p) => {
    const at = resolve(p.file);
    return at === file || at === dirname(file);
  });
}
