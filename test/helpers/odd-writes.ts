import type { Test } from 'tap';
import { join } from 'node:path';
import { FIXTURES } from './node.js';
import { python } from './probe.js';
import { q, sh } from './process.js';

/** One case of test/fixtures/odd-writes.py (see the file), with what it must report. */
export interface OddWriteCase<Service extends string = string> {
  name: string;
  service: Service;
  /** Python, run by odd-writes.py with its helpers: opened, w, pw, close, step, expect; F, C. */
  code: string;
  /** The outcome comes only at the release of the last descriptor: wait for it. */
  release?: boolean;
  data?: string;
  chunks?: number[];
  extras?: string[];
  transaction?: boolean;
  expect: {
    steps: string[];
    invokes: number;
    /** last_error.txt (and status.json's errno) for a refused write; absent: both empty. */
    error?: RegExp;
    /** result.json afterwards. */
    result?: string | Buffer;
  };
}

/** What odd-writes.py reports of one case. */
interface Report {
  name: string;
  steps: string[];
  invokes: number;
  last_error: string;
  errno: string | null;
  result: string;
}

/** `code` for a case that runs the bash command extras[0] with $F (the file) and $PYTHON set, which must exit 0. */
export const TOOL = String.raw`import subprocess, sys
r = subprocess.run(['bash', '-c', extras[0]], env=dict(os.environ, F=F, PYTHON=sys.executable), capture_output=True)
expect(r.returncode == 0, 'exit %d: %s' % (r.returncode, r.stderr.decode().strip()))`;

/** `n` steps that succeeded. */
export const ok = (n: number): string[] => Array<string>(n).fill('ok');

/** A case that writes `bytes` (a Python bytes expression) in one write to `file` (F: control/invoke.json, C: config.json), then closes. */
function oneWrite<Service extends string>(
  name: string,
  service: Service,
  file: 'F' | 'C',
  bytes: string,
  expect: OddWriteCase['expect'],
): OddWriteCase<Service> {
  return { name, service, code: `fd = opened(${file}); w(fd, ${bytes}); close(fd)`, expect };
}

/** One write that close() refuses with EINVAL: nothing runs, `error` says why. */
export function refusedAtClose<Service extends string>(name: string, service: Service, file: 'F' | 'C', bytes: string, error: RegExp): OddWriteCase<Service> {
  return oneWrite(name, service, file, bytes, { steps: ['ok', 'ok', 'EINVAL'], invokes: 0, error });
}

/** One write over the file's size limit: the write and close() fail with EFBIG, nothing runs, `error` says why. */
export function refusedAsTooBig<Service extends string>(name: string, service: Service, file: 'F' | 'C', bytes: string, error: RegExp): OddWriteCase<Service> {
  return oneWrite(name, service, file, bytes, { steps: ['ok', 'EFBIG', 'EFBIG'], invokes: 0, error });
}

/**
 * Runs the cases with odd-writes.py (one child process) on a mount's `services/` directory, each after
 * a control/reset, and checks each report; the number of cases that failed a check.
 */
export async function oddWrites(t: Test, servicesDir: string, cases: readonly OddWriteCase[]): Promise<number> {
  const input = JSON.stringify(cases.map(({ expect: _, ...c }) => c));
  const run = await sh(`${q(await python())} ${q(join(FIXTURES, 'odd-writes.py'))} ${q(servicesDir)}`, { input, timeoutMs: 100_000 });
  t.equal(run.code, 0, `odd-writes.py ran (${run.stderr.trim().split('\n').slice(-3).join(' ')})`);
  const reports = run.stdout
    .trim()
    .split('\n')
    .filter(Boolean)
    .map((line) => JSON.parse(line) as Report);
  t.equal(reports.length, cases.length, 'one report per case');
  let failures = 0;
  for (const [i, c] of cases.entries()) {
    const r = reports[i];
    if (!r) {
      failures++;
      continue;
    }
    const checks = [
      t.same(r.steps, c.expect.steps, `${c.name}: steps ${c.expect.steps.join(' ') || '(none failed)'}`),
      t.equal(r.invokes, c.expect.invokes, `${c.name}: ${c.expect.invokes} invocation(s)`),
    ];
    if (c.expect.error) {
      checks.push(t.match(r.last_error, c.expect.error, `${c.name}: last_error.txt names it (${r.last_error.trim().slice(0, 120)})`));
      checks.push(t.equal(r.errno, r.last_error.split(':')[0], `${c.name}: status.json has the errno`));
    } else {
      checks.push(t.equal(r.last_error, '', `${c.name}: no error recorded`));
      checks.push(t.notOk(r.errno, `${c.name}: status.json has no errno`));
    }
    if (c.expect.result !== undefined)
      checks.push(t.ok(Buffer.from(r.result, 'base64').equals(Buffer.from(c.expect.result)), `${c.name}: the driver got exactly the bytes written`));
    if (checks.includes(false)) failures++;
  }
  return failures;
}
