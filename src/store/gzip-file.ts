import { spawn } from 'node:child_process';
import { createReadStream, createWriteStream } from 'node:fs';
import { open, type FileHandle } from 'node:fs/promises';
import { setPriority } from 'node:os';
import { pipeline } from 'node:stream/promises';
import { createGzip } from 'node:zlib';

/** The lowest CPU priority: the work runs on what the daemon and its peers leave idle. */
const BACKGROUND_NICE = 19;

/**
 * Compresses `source` into a new file `target` (mode 0600, synced before this resolves), level 1,
 * as background work: Debian's `gzip` at the lowest priority, writing straight into `target`, so
 * the bytes never pass through this process and the compression yields the CPU to whatever serves
 * clients. Without a `gzip` to run, zlib in this process (its thread pool) does it at normal priority.
 */
export async function gzipInBackground(source: string, target: string): Promise<void> {
  const file = await open(target, 'w', 0o600);
  let ran: boolean;
  try {
    ran = await runGzip(source, file);
    if (ran) await file.sync();
  } finally {
    await file.close();
  }
  if (ran) return;
  await pipeline(createReadStream(source), createGzip({ level: 1 }), createWriteStream(target, { mode: 0o600 }));
  const written = await open(target, 'r+');
  await written.sync().finally(() => written.close());
}

/** False when there is no gzip to run; rejects when it ran and failed. */
function runGzip(source: string, target: FileHandle): Promise<boolean> {
  return new Promise((resolve, reject) => {
    // -n: no name or time in the header, so the archive's bytes depend on the events alone.
    const child = spawn('gzip', ['-1', '-n', '-c', source], { stdio: ['ignore', target.fd, 'pipe'] });
    let stderr = '';
    child.stderr?.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    child.once('spawn', () => {
      try {
        setPriority(child.pid as number, BACKGROUND_NICE);
      } catch {
        // It has exited already, or priorities cannot be set here: it runs as it is.
      }
    });
    // The first of these settles it: a gzip that could not start reports an error, then may close too.
    child.once('error', (error: NodeJS.ErrnoException) => (error.code === 'ENOENT' ? resolve(false) : reject(error)));
    child.once('close', (code, signal) => {
      if (code === 0) resolve(true);
      else reject(new Error(`gzip ${source}: ${signal ?? `exit ${code}`}${stderr ? `: ${stderr.trim()}` : ''}`));
    });
  });
}
