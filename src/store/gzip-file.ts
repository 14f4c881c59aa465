import { spawn } from 'node:child_process';
import { createReadStream, createWriteStream } from 'node:fs';
import { open, rm, type FileHandle } from 'node:fs/promises';
import { setPriority } from 'node:os';
import { pipeline } from 'node:stream/promises';
import { createGzip } from 'node:zlib';

/** The lowest CPU priority: the work gets little CPU while other work wants it. */
const BACKGROUND_NICE = 19;

/**
 * Compresses `source` into a new file `target` (mode 0600, synced before this resolves), level 1,
 * as background work: Debian's `gzip` at the lowest priority, writing straight into `target`, so
 * the bytes never pass through this process and the compression yields the CPU to whatever serves
 * clients. Zlib in this process (its thread pool, normal priority) does it instead when no `gzip`
 * can be run, or once `hurry` is aborted (a stop that waits for it: a gzip at nice 19 on a busy
 * machine would hold the stop, and a process may not raise a child's priority back without
 * privilege). A file at `target` is removed first: a gzip left running by a killed server writes
 * to that one, not to this. Nothing stays at `target` when this fails.
 */
export async function gzipInBackground(source: string, target: string, hurry?: AbortSignal): Promise<void> {
  await rm(target, { force: true });
  try {
    const file = await open(target, 'wx', 0o600);
    let ran = false;
    try {
      ran = hurry?.aborted !== true && (await runGzip(source, file, hurry));
      if (ran) await file.sync();
    } finally {
      await file.close();
    }
    if (ran) return;
    await pipeline(createReadStream(source), createGzip({ level: 1 }), createWriteStream(target));
    const written = await open(target, 'r+');
    await written.sync().finally(() => written.close());
  } catch (error) {
    await rm(target, { force: true });
    throw error;
  }
}

/** False when gzip could not be run, or was stopped by `hurry`; rejects when it failed. */
function runGzip(source: string, target: FileHandle, hurry: AbortSignal | undefined): Promise<boolean> {
  return new Promise((resolve, reject) => {
    // -n: no name or time in the header, so the archive's bytes depend on the events alone.
    const child = spawn('gzip', ['-1', '-n', '-c', source], { stdio: ['ignore', target.fd, 'pipe'] });
    const stop = (): void => void child.kill('SIGKILL');
    hurry?.addEventListener('abort', stop, { once: true });
    let stderr = '';
    child.stderr?.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    child.once('spawn', () => {
      try {
        setPriority(child.pid as number, BACKGROUND_NICE);
      } catch {
        // It has exited already, or priorities cannot be set here: it runs as it is.
      }
    });
    // The first of these settles it: a gzip that could not start (missing, not executable) reports an error, then may close too.
    child.once('error', () => resolve(false));
    child.once('close', (code, signal) => {
      hurry?.removeEventListener('abort', stop);
      if (code === 0) resolve(true);
      else if (hurry?.aborted) resolve(false);
      else reject(new Error(`gzip ${source}: ${signal ?? `exit ${code}`}${stderr ? `: ${stderr.trim()}` : ''}`));
    });
  });
}
