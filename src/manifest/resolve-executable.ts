import { constants } from 'node:fs';
import { access as fsAccess, stat } from 'node:fs/promises';
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
export function resolveExecutable(executablePath: string, envPath: string | undefined): Promise<{ path: string } | { error: string }> {
  return resolveFile(executablePath, envPath, { mode: constants.X_OK, refusal: 'not executable' });
}

/** A wasm service's `module_path` (SPEC §4): found like an executable, but it must be readable, not executable. */
export function resolveModule(modulePath: string, envPath: string | undefined): Promise<{ path: string } | { error: string }> {
  return resolveFile(modulePath, envPath, { mode: constants.R_OK, refusal: 'not readable' });
}

type Access = { mode: number; refusal: string };

async function resolveFile(file: string, envPath: string | undefined, access: Access): Promise<{ path: string } | { error: string }> {
  if (file.includes('/')) {
    const refusal = await refuse(file, access);
    return refusal === undefined ? { path: file } : { error: `${file}: ${refusal}` };
  }
  let firstRefusal: string | undefined;
  // Empty PATH entries mean the current directory to a shell; a daemon's cwd is no place to find drivers.
  for (const dir of (envPath ?? '').split(delimiter).filter((entry) => entry !== '')) {
    const candidate = join(dir, file);
    const refusal = await refuse(candidate, access);
    if (refusal === undefined) return { path: candidate };
    // Like execvp: keep looking, but a found-but-unusable file explains the failure better than "not found".
    if (firstRefusal === undefined && refusal !== 'no such file') firstRefusal = `${candidate}: ${refusal}`;
  }
  return { error: firstRefusal ?? `${file}: not found in PATH` };
}

/** Why `path` cannot be used, or undefined when it can. */
async function refuse(path: string, access: Access): Promise<string | undefined> {
  try {
    const stats = await stat(path);
    if (!stats.isFile()) return 'not a regular file';
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : messageOf(error);
  }
  try {
    await fsAccess(path, access.mode);
    return undefined;
  } catch {
    return access.refusal;
  }
}
