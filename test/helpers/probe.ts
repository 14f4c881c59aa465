import { PROBE } from './node.js';
import { q, sh } from './process.js';

/** One operation of test/fixtures/probe.py (see the file for each op's fields and value). */
export interface ProbeOp {
  op: 'ls' | 'stat' | 'read' | 'write' | 'transact';
  path: string;
  data?: string;
  create?: boolean;
}

/** Its outcome: `value`, or `errno` (the errno's name); `ms` the operation took. */
export interface Outcome {
  value?: unknown;
  errno?: string;
  ms: number;
}

let interpreter: Promise<string> | undefined;
/** The interpreter itself, asked once: a version manager's `python3` shim costs a shell script per start. */
export function python(): Promise<string> {
  interpreter ??= sh(`python3 -c 'import sys; print(sys.executable)'`).then((r) => (r.code === 0 && r.stdout.trim()) || 'python3');
  return interpreter;
}

async function runProbe(command: string, ops: readonly ProbeOp[], timeoutMs: number): Promise<Outcome[]> {
  const r = await sh(`${command} ${q(PROBE)}`, { input: JSON.stringify(ops), timeoutMs });
  if (r.code !== 0) throw new Error(`probe.py: exit ${r.code ?? r.signal}: ${r.stderr.trim()}`);
  return JSON.parse(r.stdout) as Outcome[];
}

/** Runs file operations in order from one python child process: many probes of a mount, one process. */
export async function probe(ops: readonly ProbeOp[], timeoutMs = 60_000): Promise<Outcome[]> {
  return runProbe(q(await python()), ops, timeoutMs);
}

/** uid and gid of `nobody`: another user than the root that runs the tests. */
export const NOBODY = 65534;

/**
 * `probe` as another user (uid = gid = `id`, no supplementary groups). The system's python3: the
 * one `python()` finds may live under root's home, which other users cannot enter.
 */
export async function probeAs(id: number, ops: readonly ProbeOp[], timeoutMs = 60_000): Promise<Outcome[]> {
  return runProbe(`setpriv --reuid=${id} --regid=${id} --clear-groups /usr/bin/python3`, ops, timeoutMs);
}

/** The value, or the errno's name. */
export const shown = (outcome: Outcome | undefined): unknown => outcome?.errno ?? outcome?.value;
