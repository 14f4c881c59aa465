import { isAbsolute, relative, sep } from 'node:path';

/** Whether `path` is `root` or lies below it (both absolute, already resolved). */
export function isInside(root: string, path: string): boolean {
  const rel = relative(root, path);
  // `..name` is a name inside; only `..` itself or `../...` leads up.
  return rel === '' || (rel !== '..' && !rel.startsWith(`..${sep}`) && !isAbsolute(rel));
}
