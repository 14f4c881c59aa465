import { constants } from 'node:fs';
import { access, stat } from 'node:fs/promises';
import { delimiter, dirname, isAbsolute, join, resolve } from 'node:path';
import { messageOf } from './message-of.js';

/**
 * Where a manifest's `runtime.executable_path` points (SPEC §2): absolute as given; containing "/",
 * relative to the manifest file's directory; a bare name stays bare and is looked up in PATH at spawn.
 */
export function manifestExecutablePath(manifestFile: string, executablePath: string): string {
  if (isAbsolute(executablePath) || !executablePath.includes('/')) return executablePath;
  return resolve(dirname(manifestFile), executablePath);
}

/**
 * Finds the program a spawn would run: a bare name in `envPath`, anything else as a path. It must be a
 * regular file we may execute. The same answer serves probes and the runner.
 */
export async function resolveExecutable(
  executablePath: string,
  envPath: string | undefined,
): Promise<{ path: string } | { error: string }> {
  if (executablePath.includes('/')) {
    const refusal = await refuseExecutable(executablePath);
    return refusal === undefined ? { path: executablePath } : { error: `${executablePath}: ${refusal}` };
  }
  let firstRefusal: string | undefined;
  // Empty PATH entries mean the current directory to a shell; a daemon's cwd is no place to find drivers.
  for (const dir of (envPath ?? '').split(delimiter).filter((entry) => entry !== '')) {
    const candidate = join(dir, executablePath);
    const refusal = await refuseExecutable(candidate);
    if (refusal === undefined) return { path: candidate };
    // Like execvp: keep looking, but a found-but-unusable file explains the failure better than "not found".
    if (firstRefusal === undefined && refusal !== 'no such file') firstRefusal = `${candidate}: ${refusal}`;
  }
  return { error: firstRefusal ?? `${executablePath}: not found in PATH` };
}

/** Why `path` cannot be executed, or undefined when it can. */
async function refuseExecutable(path: string): Promise<string | undefined> {
  try {
    const stats = await stat(path);
    if (!stats.isFile()) return 'not a regular file';
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : messageOf(error);
  }
  try {
    await access(path, constants.X_OK);
    return undefined;
  } catch {
    return 'not executable';
  }
}
