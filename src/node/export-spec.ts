import { realpath, stat } from 'node:fs/promises';
import { resolve } from 'node:path';
import { isInside } from './paths.js';

// `--export name=path[:ro|:rw]`: the option's syntax and the checks at start-up (fs-provider.ts serves them).

export interface ExportSpec {
  name: string;
  path: string;
  readOnly: boolean;
}

/** Parses `--export name=path[:ro|:rw]`. */
export function parseExport(text: string): ExportSpec {
  const match = /^([A-Za-z0-9._-]{1,128})=(.+?)(?::(ro|rw))?$/.exec(text);
  if (!match || match[1] === '.' || match[1] === '..')
    throw new TypeError(`--export ${JSON.stringify(text)}: expected name=path[:ro|:rw] with an identifier name`);
  return { name: match[1] as string, path: resolve(match[2] as string), readOnly: match[3] === 'ro' };
}

/** Checks exports before mounting: they exist, are directories, and none contains the mount. */
export async function checkExports(exports: readonly ExportSpec[], mountPoint: string): Promise<ExportSpec[]> {
  const names = new Set<string>();
  const checked: ExportSpec[] = [];
  const mountReal = resolve(mountPoint);
  for (const spec of exports) {
    if (names.has(spec.name)) throw new TypeError(`--export ${spec.name}: duplicate export name`);
    names.add(spec.name);
    let real: string;
    try {
      real = await realpath(spec.path);
    } catch (error) {
      // `name=/x:xx`, a mistyped mode, is the path `/x:xx`: said, when there is no such path.
      const mode = (error as NodeJS.ErrnoException).code === 'ENOENT' ? /:([^:/]*)$/.exec(spec.path)?.[1] : undefined;
      throw new TypeError(`--export ${spec.name}=${spec.path}: ${(error as Error).message}${mode === undefined ? '' : ` (":${mode}" is no mode: ro or rw)`}`);
    }
    if (!(await stat(real)).isDirectory()) throw new TypeError(`--export ${spec.name}=${spec.path}: not a directory`);
    if (isInside(real, mountReal))
      throw new TypeError(`--export ${spec.name}=${spec.path}: contains the mount point ${mountPoint} (it would serve itself and deadlock)`);
    checked.push({ ...spec, path: real });
  }
  return checked;
}
