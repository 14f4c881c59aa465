// What a run of scripts/acheron-multi-node-runtime.sh may leave behind, found from the `# run` line
// it prints first: its network namespaces (their veth pairs live and die with them), mounts and
// processes under its directory, and the directory itself.
import { spawn } from 'node:child_process';
import { readdir, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { REPO, type Teardown } from './node.js';
import { sh, watchdog } from './process.js';

export const HARNESS_SCRIPT = join(REPO, 'scripts', 'acheron-multi-node-runtime.sh');

export interface HarnessRun {
  runId: string | undefined;
  runDir: string;
}

/** `# run <id>: network namespaces acheron-h<id>-*, directory <dir>` (own fleet) or `# run directory <dir>`. */
export function runInfo(stdout: string): HarnessRun {
  const own = /^# run ([0-9a-f]+): network namespaces \S+, directory (\S+)$/m.exec(stdout);
  if (own) return { runId: own[1], runDir: own[2] as string };
  const existing = /^# run directory (\S+)$/m.exec(stdout);
  if (existing) return { runId: undefined, runDir: existing[1] as string };
  throw new Error(`the harness printed no # run line: ${stdout.slice(0, 500)}`);
}

/** The line of one check (`ok <name> (...)`, `FAIL <name> (...)` or `skip <name>:`), if the run printed it. */
export function checkLine(stdout: string, name: string): string | undefined {
  return stdout.split('\n').find((line) => new RegExp(`^(ok|FAIL|skip) ${name}[ :]`).test(line));
}

/** Everything of the run that still exists, one line each; [] when it cleaned up. */
export async function leftovers(run: HarnessRun): Promise<string[]> {
  const found: string[] = [];
  if (run.runId !== undefined) {
    const namespaces = (await sh('ip netns list')).stdout.split('\n').filter((l) => l.startsWith(`acheron-h${run.runId}-`));
    found.push(...namespaces.map((ns) => `network namespace ${ns}`));
    const links = (await sh('ip -o link show')).stdout.split('\n').filter((l) => l.includes(`a${run.runId}`));
    found.push(...links.map((l) => `link ${l}`));
  }
  const mounts = (await readFile('/proc/self/mountinfo', 'utf8'))
    .split('\n')
    .map((l) => l.split(' ')[4] ?? '')
    .filter((m) => m.startsWith(`${run.runDir}/`));
  found.push(...mounts.map((m) => `mount ${m}`));
  for (const pid of (await readdir('/proc')).filter((e) => /^\d+$/.test(e))) {
    const cmdline = await readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '');
    if (cmdline.includes(run.runDir)) found.push(`process ${pid}: ${cmdline.replace(/\0/g, ' ').slice(0, 200)}`);
  }
  if (
    await stat(run.runDir).then(
      () => true,
      () => false,
    )
  )
    found.push(`directory ${run.runDir}`);
  return found;
}

/** The script in a process group of its own (as a terminal runs it), its output as it comes. */
export function harness(
  t: Teardown,
  env: Record<string, string>,
): { stdout: () => string; stderr: () => string; exited: Promise<number | null>; interrupt(): void } {
  const child = spawn('bash', [HARNESS_SCRIPT], { env: { ...process.env, ...env }, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
  // If this test process dies without its teardown, the script still stops and cleans up after itself.
  watchdog(child.pid as number, 'true', 'TERM');
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const exited = new Promise<number | null>((resolve) => child.once('close', (code, signal) => resolve(code ?? (signal ? 128 : null))));
  let ended = false;
  void exited.then(() => (ended = true));
  const signal = (name: NodeJS.Signals): void => {
    try {
      process.kill(-(child.pid as number), name);
    } catch {
      // it ended
    }
  };
  // SIGTERM first: the script's own cleanup (daemons, mounts, namespaces) runs; SIGKILL only if it hangs.
  t.teardown(async () => {
    if (ended) return;
    signal('SIGTERM');
    const timer = setTimeout(() => signal('SIGKILL'), 60_000);
    await exited;
    clearTimeout(timer);
  });
  return { stdout: () => stdout, stderr: () => stderr, exited, interrupt: () => process.kill(-(child.pid as number), 'SIGINT') };
}
