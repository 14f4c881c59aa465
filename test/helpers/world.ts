import type { ChildProcess } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { ACHERON, isMounted, spawnMounter, tempDir, type Exit, type Teardown } from './node.js';
import { waitFor } from './process.js';

export interface RunningWorld {
  mount: string;
  logFile: string;
  child: ChildProcess;
  exited: Promise<Exit>;
  /** `<mount>/nodes/<node_id>` (or `<mount>/<node_id>` with --subtree nodes). */
  node(nodeId: string): string;
}

/**
 * Starts `acheron world` in the foreground as a child process (its own process group) and waits
 * until the mount is live. Teardown kills it and lazily unmounts, also when the test failed.
 */
export async function startWorld(t: Teardown, options: { url: string; token: string; args?: string[]; subtree?: boolean }): Promise<RunningWorld> {
  const dir = await tempDir(t, 'acheron-world-');
  const mount = join(dir, 'mnt');
  const logFile = join(dir, 'world.log');
  const args = [
    ACHERON,
    'world',
    '--control-url',
    options.url,
    '--token',
    options.token,
    '--mount',
    mount,
    '--log-file',
    logFile,
    '--log-level',
    'debug',
    ...(options.subtree ? ['--subtree', 'nodes'] : []),
    ...(options.args ?? []),
  ];
  const { child, exited, gone, stderr } = spawnMounter(t, args, mount);
  await waitFor(async () => gone() || (await isMounted(mount)), { what: `world mount at ${mount}`, timeoutMs: 30_000 });
  if (gone())
    throw new Error(
      `acheron world exited before mounting (${JSON.stringify(await exited)}): ${stderr().trim()} ${(await readFile(logFile, 'utf8').catch(() => '')).trim().split('\n').slice(-3).join(' | ')}`,
    );
  return { mount, logFile, child, exited, node: (nodeId) => (options.subtree ? join(mount, nodeId) : join(mount, 'nodes', nodeId)) };
}
