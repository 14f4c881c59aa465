import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { ACHERON, isMounted, tempDir } from './node.js';
import { q, sh, waitFor } from './process.js';

interface Teardown {
  teardown(fn: () => Promise<void> | void): void;
}

export interface RunningWorld {
  mount: string;
  logFile: string;
  child: ChildProcess;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
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
  const args = [ACHERON, 'world', '--control-url', options.url, '--token', options.token, '--mount', mount, '--log-file', logFile, '--log-level', 'debug', ...(options.subtree ? ['--subtree', 'nodes'] : []), ...(options.args ?? [])];
  const child = spawn(process.execPath, args, { stdio: ['ignore', 'ignore', 'pipe'], detached: true });
  let stderr = '';
  child.stderr?.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
  let gone = false;
  void exited.then(() => (gone = true));
  t.teardown(async () => {
    if (!gone) {
      try {
        process.kill(-(child.pid as number), 'SIGKILL');
      } catch {
        // already gone
      }
      await exited;
    }
    await sh(`fusermount -uz ${q(mount)} 2>/dev/null; true`);
  });
  await waitFor(async () => gone || (await isMounted(mount)), { what: `world mount at ${mount}`, timeoutMs: 30_000 });
  if (gone) throw new Error(`acheron world exited before mounting: ${stderr.trim()}`);
  return { mount, logFile, child, exited, node: (nodeId) => (options.subtree ? join(mount, nodeId) : join(mount, 'nodes', nodeId)) };
}
