// One conformance suite for a service directory, run against every projection of it (issue 15 part
// 4; STYLE.md "One suite, both mounts", after go-fuse's posixtest): the node's own mount
// (service-files-node.test.ts) and a WorldFS mount of a node (service-files-world.test.ts) run the
// same named cases, so the two cannot drift. The cases cover every file of the directory (SPEC §3),
// the commit rule, the errno table, transactions and the controls (§5). Where WorldFS differs by
// design, docs/worldfs.md says so and PROJECTIONS encodes it: a case states what each mount must do,
// it never skips a check. The mounts are touched only from child processes (test/fixtures/
// service-files.py, odd-writes.py, bash tools). To add a check: a case in SERVICE_FILES_CASES (a
// service of SERVICE_FILES_MANIFESTS, or a new one there); a difference by design goes into
// PROJECTIONS with the doc that says so.
import type { Test } from 'tap';
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { rename, writeFile } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { createInterface } from 'node:readline';
import { JOB_FILES, SERVICE_FILES, type ServiceFileKind } from '../../../src/protocol/service-files.js';
import { FIXTURES, manifest } from '../../helpers/node.js';
import { oddWrites, ok, refusedAtClose, TOOL, type OddWriteCase } from '../../helpers/odd-writes.js';
import { python } from '../../helpers/probe.js';
import { q, sh, waitFor } from '../../helpers/process.js';

export type Projection = 'node' | 'world';

export interface ServiceFilesContext {
  /** Which projection the case runs on. */
  projection: Projection;
  /** The node's id. */
  nodeId: string;
  /** A service directory on this mount. */
  service(id: ServiceId): ServiceDir;
  /** The same service directory on the node's own mount: what every projection must agree with. */
  onNode(id: ServiceId): ServiceDir;
  /** A directory outside every mount, for payload files. */
  scratch: string;
  /** The node's services directory: a case may move a manifest away (a reload removes the service) and back. */
  servicesDir: string;
}

export interface ServiceFilesCase {
  /** The service the case works on (its directory is the `svc` argument). */
  service: ServiceId;
  run(t: Test, svc: ServiceDir, context: ServiceFilesContext): Promise<void>;
}

const FLAKY_SCRIPT = 'p=$(cat); case "$p" in *fail*) echo "flaky: asked to fail" >&2; exit 3;; esac; printf "%s" "$p"';
const CAT_HELP = '# cat\n\nAnswers with its payload, byte for byte.';
const ECHO_SCHEMA = { input: { type: 'object', properties: { n: { type: 'integer' } } }, example: { n: 1 } };
const SMALL_LIMIT = 1024;
const JOBS_KEEP = 3;

/** The services the cases use; the node under test must load exactly these manifests. */
export const SERVICE_FILES_MANIFESTS = {
  // The directory most cases look at: a schema, an example, no help_md (so README.md is generated).
  echo: manifest('echo', 'echo', { schema: ECHO_SCHEMA, runtime: { jobs_keep: JOBS_KEEP } }),
  // Its result is exactly its payload; help_md without a final newline.
  cat: manifest('cat', 'cat', { help_md: CAT_HELP }),
  bytes: manifest('bytes', 'count-bytes'),
  small: manifest('small', 'cat', { runtime: { max_input_bytes: SMALL_LIMIT } }),
  flaky: manifest('flaky', '/bin/sh', { runtime: { args: ['-c', FLAKY_SCRIPT] } }),
  slow: manifest('slow', 'slow', { runtime: { max_concurrency: 3, env: { SLOW_SECONDS: '0.3' } } }),
  hang: manifest('hang', 'hang', { runtime: { max_concurrency: 2, timeout_ms: 25_000, kill_grace_ms: 500 } }),
  gate: manifest('gate', 'echo'),
  cooling: manifest('cooling', 'fail'),
  // Removed by a reload and added again (the case moves its manifest away and back).
  gone: manifest('gone', 'echo'),
} as const;
export type ServiceId = keyof typeof SERVICE_FILES_MANIFESTS;

/** Files a WorldFS mount serves from the catalog instead of relaying them to the node. */
const CATALOG_KINDS = new Set<ServiceFileKind>(['readme', 'schema', 'template', 'host']);
const LIVE_FILES = SERVICE_FILES.filter((f) => !CATALOG_KINDS.has(f.kind));

/** How the projections differ, by design and documented; nothing else may. */
export const PROJECTIONS = {
  node: {
    /** Rendered by the node from the manifest (docs/node-tree.md "A service directory"). */
    catalogFiles: SERVICE_FILES.filter((f) => CATALOG_KINDS.has(f.kind)).map((f) => f.path),
    /** EPERM (disabled) and EAGAIN (cooldown) come from the open for writing (SPEC §3). */
    admissionStep: 'open',
    /** control/invoke.json changes with the service, like status.json (docs/node-tree.md "Times and sizes"). */
    invokeFileTimes: 'status.json',
  },
  world: {
    /** docs/worldfs.md "The tree": upper-case names are the catalog's metadata; no TEMPLATE.json or HOST.json. */
    catalogFiles: ['README.md', 'SCHEMA.json', 'STATUS.json', 'CAPS.json', 'MOUNTS.json', 'OPS.json', 'RUNTIME.json', 'PERMISSIONS.json'],
    /** docs/worldfs.md "Admission at the commit": an open costs no round trip, so they come from close(). */
    admissionStep: 'close',
    /** docs/worldfs.md "Times of control/invoke.json": WorldFS serves it itself, with the catalog entry's times. */
    invokeFileTimes: 'the catalog',
  },
} as const;

const FIXTURE = join(FIXTURES, 'service-files.py');

/** What service-files.py says of one entry of a tree (see the fixture). */
interface Entry {
  type?: 'dir' | 'file' | 'other';
  mode?: number;
  uid?: number;
  size?: number;
  mtime_ms?: number;
  names?: string[];
  data?: string;
  read_errno?: string;
  errno?: string;
}
type Tree = Record<string, Entry>;

interface Written {
  errno: string | null;
  step: 'open' | 'write' | 'read' | 'close' | null;
  out: string;
}

interface Waiting {
  resolve(answer: Record<string, unknown>): void;
  reject(error: Error): void;
}

/**
 * The suite's one child process on the mounts (test/fixtures/service-files.py): the cases' file
 * operations (odd-writes.py and bash tools aside) are requests to it, so no case pays a process start
 * per operation (on a busy machine that is most of the run). Requests run concurrently there, each in
 * its own thread.
 */
export class ChildFs {
  readonly #child: ChildProcess;
  readonly #waiting = new Map<number, Waiting>();
  #next = 0;
  #stderr = '';
  /** Why the child process is gone, once it is. */
  #gone: string | undefined;

  private constructor(child: ChildProcess) {
    this.#child = child;
    child.stderr?.on('data', (chunk: Buffer) => (this.#stderr += chunk.toString()));
    // A write to a child that is gone fails here; its exit below answers every request.
    child.stdin?.on('error', () => undefined);
    createInterface({ input: child.stdout as NodeJS.ReadableStream }).on('line', (line) => {
      const { id, ...answer } = JSON.parse(line) as Record<string, unknown>;
      this.#waiting.get(Number(id))?.resolve(answer);
    });
    child.on('exit', (code, signal) => {
      this.#gone = `service-files.py exited (${code ?? signal}): ${this.#stderr.trim()}`;
      for (const w of this.#waiting.values()) w.reject(new Error(this.#gone));
    });
  }

  /** Starts the child process; t's teardown ends it. */
  static async start(t: Test): Promise<ChildFs> {
    const child = spawn(await python(), [FIXTURE], { stdio: ['pipe', 'pipe', 'pipe'] });
    t.teardown(() => void child.kill('SIGKILL'));
    return new ChildFs(child);
  }

  #ask<T>(op: string, path: string, fields: Record<string, unknown> = {}): Promise<T> {
    const id = this.#next++;
    if (this.#gone) return Promise.reject(new Error(this.#gone));
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => settle(() => reject(new Error(`service-files.py: no answer to ${op} ${path} within ${ANSWER_MS} ms`))), ANSWER_MS);
      const settle = (then: () => void): void => {
        clearTimeout(timer);
        this.#waiting.delete(id);
        then();
      };
      this.#waiting.set(id, {
        resolve: (answer) =>
          settle(() => (typeof answer.error === 'string' ? reject(new Error(`service-files.py ${op} ${path}: ${answer.error}`)) : resolve(answer as T))),
        reject: (error) => settle(() => reject(error)),
      });
      this.#child.stdin?.write(`${JSON.stringify({ id, op, path, ...fields })}\n`);
    });
  }

  /** Every entry below a directory, with what a read-only open reads of each file. */
  async tree(dir: string): Promise<Tree> {
    return (await this.#ask<{ tree: Tree }>('tree', dir)).tree;
  }

  /** lstat of each dir/name: "ok" or the errno. */
  async stat(dir: string, names: string[]): Promise<Record<string, string>> {
    return (await this.#ask<{ stat: Record<string, string> }>('stat', dir, { names })).stat;
  }

  /** The fixture's SPEC §3 errno table, tried on a service directory and its job `job`. */
  async errnos(dir: string, job: string): Promise<Record<string, string>> {
    return (await this.#ask<{ errnos: Record<string, string> }>('errnos', dir, { job })).errnos;
  }

  /** One write of `payload`, with the step that failed; `rdwr`: a transaction, its outcome in `out`, read `chunk` bytes at a time. */
  write(path: string, payload: string | Buffer, mode: 'w' | 'rdwr' = 'w', chunk?: number): Promise<Written> {
    return this.#ask<Written>('write', path, { mode, data: Buffer.from(payload).toString('base64'), ...(chunk ? { chunk } : {}) });
  }

  async read(path: string): Promise<string> {
    const r = await this.#ask<{ errno: string | null; data?: string }>('read', path);
    if (r.errno) throw new Error(`read ${path}: ${r.errno}`);
    return Buffer.from(r.data ?? '', 'base64').toString('utf8');
  }

  /** A descriptor the child keeps open for `use`. */
  async open(path: string, mode: 'r' | 'w' | 'rdwr'): Promise<number> {
    const r = await this.#ask<{ errno: string | null; fd?: number }>('open', path, { mode });
    if (r.errno) throw new Error(`open ${path}: ${r.errno}`);
    return Number(r.fd);
  }

  /** One step on a descriptor `open` kept: "ok" (a pread: "ok <what it read>") or the errno. */
  async use(fd: number, step: 'write' | 'pread' | 'ftruncate' | 'fsync' | 'close', data = ''): Promise<string> {
    const r = await this.#ask<{ errno: string | null; data?: string }>('use', `fd ${fd}`, { fd, step, data: Buffer.from(data).toString('base64') });
    return r.errno ?? (r.data === undefined ? 'ok' : `ok ${Buffer.from(r.data, 'base64').toString('utf8')}`);
  }

  async list(dir: string): Promise<string[]> {
    const r = await this.#ask<{ errno: string | null; names?: string[] }>('list', dir);
    if (r.errno) throw new Error(`list ${dir}: ${r.errno}`);
    return r.names ?? [];
  }
}
/** A mount that answers nothing for this long has failed the case (tap's file timeout is 120 s). */
const ANSWER_MS = 60_000;

interface Metrics {
  invokes_total: number;
  rejected_total: number;
  failures_total: number;
  timeouts_total: number;
  consecutive_failures: number;
  consecutive_timeouts: number;
  cancelled_total: number;
}

/** One service directory on one mount, worked through the suite's child process. */
export class ServiceDir {
  constructor(
    readonly fs: ChildFs,
    readonly path: string,
  ) {}

  tree(): Promise<Tree> {
    return this.fs.tree(this.path);
  }

  text(name: string): Promise<string> {
    return this.fs.read(join(this.path, name));
  }

  async json<T = Record<string, unknown>>(name: string): Promise<T> {
    return JSON.parse(await this.text(name)) as T;
  }

  status(): Promise<Record<string, unknown>> {
    return this.json('status.json');
  }

  metrics(): Promise<Metrics> {
    return this.json<Metrics>('metrics.json');
  }

  health(): Promise<Record<string, unknown>> {
    return this.json('health.json');
  }

  /** One write to control/invoke.json (or `file`); see ChildFs.write. */
  write(payload: string | Buffer, mode: 'w' | 'rdwr' = 'w', file = 'control/invoke.json', chunk?: number): Promise<Written> {
    return this.fs.write(join(this.path, file), payload, mode, chunk);
  }

  /** `echo 1 > control/<verb>`, with the errno a failing step gives. */
  control(verb: string): Promise<Written> {
    return this.write('1\n', 'w', `control/${verb}`);
  }
}

const bytesOf = (entry: Entry | undefined): Buffer => Buffer.from(entry?.data ?? '', 'base64');
const textOf = (entry: Entry | undefined): string => bytesOf(entry).toString('utf8');
const jsonOf = <T = Record<string, unknown>>(entry: Entry | undefined): T => JSON.parse(textOf(entry)) as T;
const md5 = (data: string | Buffer): string => createHash('md5').update(data).digest('hex');

/** A write (a ctl file, config.json) that must succeed. */
async function succeeded(t: Test, written: Promise<Written>, what: string): Promise<void> {
  const r = await written;
  t.same({ errno: r.errno, step: r.step }, { errno: null, step: null }, what);
}

/** An invocation that must be taken (its driver may still fail): its invocation id. */
async function invoke(t: Test, svc: ServiceDir, payload: string): Promise<string> {
  const r = await svc.write(payload);
  t.equal(r.errno, null, `invoke ${payload.trim().slice(0, 40)}: taken (${r.errno ?? ''} at ${r.step ?? ''})`);
  return String((await svc.status()).invocation_id);
}

const STATUS_FIELDS = [
  'service_id',
  'runtime',
  'state',
  'running',
  'queued',
  'invocation_id',
  'updated_ms',
  'duration_ms',
  'exit_code',
  'signal',
  'result_format',
];
const METRICS_FIELDS = [
  'invokes_total',
  'rejected_total',
  'failures_total',
  'consecutive_failures',
  'timeouts_total',
  'consecutive_timeouts',
  'cancelled_total',
  'last_duration_ms',
  'last_started_ms',
  'last_finished_ms',
  'last_exit_code',
  'latency_ms',
];
const HEALTH_FIELDS = [
  'state',
  'enabled',
  'last_control_op',
  'last_control_ms',
  'restarts_total',
  'cooldown_until_ms',
  'cooldown_remaining_ms',
  'supervision',
  'probe',
  'metrics',
  'last_transition_ms',
  'last_healthy_ms',
  'last_error',
];
const JOB_STATUS_FIELDS = [
  'invocation_id',
  'service_id',
  'state',
  'queued_ms',
  'started_ms',
  'finished_ms',
  'duration_ms',
  'exit_code',
  'signal',
  'request_bytes',
  'error',
];
const INVOCATION_ID = /^\d+-\d{4}$/;

const py = String.raw;

/** Expected type and mode of each path of a service directory on a projection (jobs/<id>/ by pattern). */
function expectedEntry(projection: Projection, path: string): { type: 'dir' | 'file'; mode: number } | undefined {
  if (path === '' || path === 'control' || path === 'jobs' || /^jobs\/[^/]+$/.test(path)) return { type: 'dir', mode: 0o755 };
  const job = /^jobs\/[^/]+\/(.+)$/.exec(path);
  if (job) {
    const file = JOB_FILES.find((f) => f.path === job[1]);
    return file && { type: 'file', mode: file.mode };
  }
  if ((PROJECTIONS[projection].catalogFiles as readonly string[]).includes(path)) {
    const own = SERVICE_FILES.find((f) => f.path === path);
    return { type: 'file', mode: own?.mode ?? 0o444 };
  }
  const live = LIVE_FILES.find((f) => f.path === path);
  return live && { type: live.mode === 0o755 ? 'dir' : 'file', mode: live.mode };
}

const topNames = (paths: readonly string[]): string[] => [...new Set(paths.map((p) => p.split('/')[0] as string))].sort();

export const SERVICE_FILES_CASES: Record<string, ServiceFilesCase> = {
  'the directory holds the service file table and nothing else': {
    service: 'echo',
    run: async (t, svc, ctx) => {
      const own = PROJECTIONS[ctx.projection].catalogFiles;
      const tree = await svc.tree();
      t.same([...(tree['']?.names ?? [])].sort(), topNames([...own, ...LIVE_FILES.map((f) => f.path)]), 'the top level');
      t.same(
        [...(tree.control?.names ?? [])].sort(),
        LIVE_FILES.filter((f) => f.path.startsWith('control/'))
          .map((f) => f.path.slice('control/'.length))
          .sort(),
        'control/',
      );
      const others = [...new Set(Object.values(PROJECTIONS).flatMap((p) => p.catalogFiles))].filter((name) => !(own as readonly string[]).includes(name));
      t.same(
        await svc.fs.stat(svc.path, others),
        Object.fromEntries(others.map((name) => [name, 'ENOENT'])),
        "the other projection's catalog files are ENOENT here",
      );
    },
  },

  'modes, types and owner follow the table, jobs/<id>/ included': {
    service: 'echo',
    run: async (t, svc, ctx) => {
      const id = await invoke(t, svc, '{"n":2}\n');
      const tree = await svc.tree();
      t.ok(tree[`jobs/${id}/request.json`], `the job ${id} is listed`);
      const uid = process.getuid?.();
      for (const [path, entry] of Object.entries(tree)) {
        t.equal(entry.uid, uid, `${path || '.'}: owned by the mounting user`);
        const expected = expectedEntry(ctx.projection, path);
        t.ok(expected, `${path}: a name of the table`);
        if (expected)
          t.same(
            { type: entry.type, mode: entry.mode?.toString(8) },
            { type: expected.type, mode: expected.mode.toString(8) },
            `${path || '.'}: ${expected.type} ${expected.mode.toString(8)}`,
          );
      }
    },
  },

  'every size is what a read returns; write-only files cannot be read; times are real': {
    service: 'echo',
    run: async (t, svc) => {
      await invoke(t, svc, '{"n":3}');
      const startedMs = Date.now();
      const tree = await svc.tree();
      for (const [path, entry] of Object.entries(tree)) {
        if (entry.type !== 'file') continue;
        t.ok((entry.mtime_ms ?? 0) > Date.parse('2024-01-01') && (entry.mtime_ms ?? 0) <= startedMs + 60_000, `${path}: a real mtime (${entry.mtime_ms})`);
        if (entry.mode === 0o200) {
          t.same({ read: entry.read_errno, size: entry.size }, { read: 'EACCES', size: 0 }, `${path}: write-only, size 0`);
          continue;
        }
        t.equal(entry.size, bytesOf(entry).length, `${path}: stat size ${entry.size} = ${bytesOf(entry).length} bytes read`);
      }
      t.same(
        { size: tree['control/invoke.json']?.size, data: textOf(tree['control/invoke.json']) },
        { size: 0, data: '' },
        'control/invoke.json: size 0, a fresh read is end of file',
      );
      for (const path of ['result.json', 'status.json', 'metrics.json', 'health.json', 'config.json']) t.ok((tree[path]?.size ?? 0) > 0, `${path} has content`);
    },
  },

  'the catalog files: the node renders README.md, SCHEMA.json, TEMPLATE.json and HOST.json; WorldFS shows the catalog entry': {
    service: 'echo',
    run: async (t, svc, ctx) => {
      const tree = await svc.tree();
      const readme = textOf(tree['README.md']);
      if (ctx.projection === 'node') {
        t.match(readme, /^# echo\n/, 'a generated README.md');
        for (const f of SERVICE_FILES) t.ok(readme.includes(`\`${f.path}\``), `README.md names ${f.path}`);
        const schema = jsonOf<{ service_id: string; control: Record<string, { mode: string; does: string }>; schema: unknown }>(tree['SCHEMA.json']);
        t.equal(schema.service_id, 'echo');
        t.same(schema.schema, ECHO_SCHEMA, 'SCHEMA.json carries the manifest schema');
        t.same(
          Object.fromEntries(Object.entries(schema.control).map(([path, c]) => [path, c.mode])),
          Object.fromEntries(SERVICE_FILES.map((f) => [f.path, f.mode.toString(8).padStart(4, '0')])),
          'and the map of the control surface',
        );
        t.same(jsonOf(tree['TEMPLATE.json']), ECHO_SCHEMA.example, 'TEMPLATE.json is schema.example');
        t.same(jsonOf(tree['HOST.json']), {
          schema: 1,
          contract: 'acheron.namespace-driver',
          abi: 'namespace-driver-v1',
          host_kind: 'native_process',
          runtime_kind: 'native_proc',
          features: { supervision: true, hot_reload: true, dynamic_mounts: false },
        });
      } else {
        t.equal(readme, `# echo\n\nA \`test\` service, version 1, on node ${ctx.nodeId}.\n`, "the catalog's README.md of a service without help_md");
        t.same(jsonOf(tree['SCHEMA.json']), ECHO_SCHEMA, 'SCHEMA.json is the manifest schema (its example is what TEMPLATE.json shows on the node)');
        const catalogStatus = jsonOf(tree['STATUS.json']);
        t.same(Object.keys(catalogStatus).sort(), ['service_id', 'state', 'supervision_status', 'version'], 'STATUS.json fields');
        t.match(catalogStatus, { service_id: 'echo', version: '1', state: 'online', supervision_status: { state: 'online', enabled: true } });
        t.match(jsonOf(tree['RUNTIME.json']), { type: 'native_proc', abi: 'namespace-driver-v1', jobs_keep: JOBS_KEEP });
        t.same(jsonOf(tree['MOUNTS.json']), [{ mount_id: 'echo', mount_path: `/nodes/${ctx.nodeId}/services/echo`, state: 'online' }]);
        t.same(jsonOf(tree['OPS.json']), { model: 'namespace', style: 'plan9' });
        t.same(jsonOf(tree['CAPS.json']), {});
        t.same(jsonOf(tree['PERMISSIONS.json']), { default: 'deny-by-default' });
      }
      // A help_md is README.md on both, with the final newline a text file has.
      t.equal(await ctx.service('cat').text('README.md'), `${CAT_HELP}\n`, 'help_md is README.md');
    },
  },

  'after a success: result.json, status.json, last_error.txt, metrics.json, health.json and jobs/<id>/': {
    service: 'echo',
    run: async (t, svc) => {
      const payload = '{"n":5}\n';
      const id = await invoke(t, svc, payload);
      t.match(id, INVOCATION_ID, `invocation id ${id}`);
      const tree = await svc.tree();
      t.same(jsonOf(tree['result.json']), { service_id: 'echo', invocation_id: id, echo: { n: 5 } }, "result.json is the driver's output");
      t.equal(textOf(tree['last_error.txt']), '', 'last_error.txt is empty after a success');
      const metricsDoc = jsonOf<Metrics & Record<string, unknown>>(tree['metrics.json']);
      t.same(Object.keys(metricsDoc).sort(), [...METRICS_FIELDS].sort(), 'metrics.json fields');
      t.match(metricsDoc, { consecutive_failures: 0, last_exit_code: 0, latency_ms: { p50: Number, p90: Number, p99: Number } });
      const statusDoc = jsonOf(tree['status.json']);
      t.same(Object.keys(statusDoc).sort(), [...STATUS_FIELDS, ...METRICS_FIELDS].sort(), 'status.json: its fields and every metric');
      t.match(statusDoc, {
        service_id: 'echo',
        runtime: { type: 'native_proc', abi: 'namespace-driver-v1', mode: 'spawn' },
        state: 'ok',
        running: 0,
        queued: 0,
        invocation_id: id,
        exit_code: 0,
        signal: null,
        result_format: 'json',
        updated_ms: Number,
        duration_ms: Number,
      });
      t.same(Object.fromEntries(METRICS_FIELDS.map((k) => [k, statusDoc[k]])), metricsDoc, 'status.json carries metrics.json');
      const healthDoc = jsonOf(tree['health.json']);
      t.same(Object.keys(healthDoc).sort(), [...HEALTH_FIELDS].sort(), 'health.json fields');
      t.match(healthDoc, {
        state: 'online',
        enabled: true,
        cooldown_until_ms: null,
        cooldown_remaining_ms: 0,
        probe: { ok: true, error: null },
        last_error: '',
        supervision: { max_consecutive_failures: 0, max_consecutive_timeouts: 0, cooldown_ms: 0, auto_disable_on_threshold: true },
      });
      t.same(healthDoc.metrics, metricsDoc, 'health.json carries metrics.json');

      const jobs = tree.jobs?.names ?? [];
      t.equal(jobs.at(-1), id, 'jobs/ lists this invocation last (invocation order)');
      t.same([...jobs].sort(), jobs, 'jobs/ is in sortable order');
      t.ok(jobs.length <= JOBS_KEEP, `runtime.jobs_keep ${JOBS_KEEP} bounds jobs/ (${jobs.length})`);
      t.same([...(tree[`jobs/${id}`]?.names ?? [])].sort(), JOB_FILES.map((f) => f.path).sort(), 'the files of a job');
      t.equal(textOf(tree[`jobs/${id}/request.json`]), payload, 'request.json: the payload exactly as written');
      t.equal(textOf(tree[`jobs/${id}/result.json`]), textOf(tree['result.json']), 'its result.json');
      t.equal(textOf(tree[`jobs/${id}/stderr.txt`]), '', 'its stderr.txt');
      const jobStatus = jsonOf(tree[`jobs/${id}/status.json`]);
      t.same(Object.keys(jobStatus).sort(), [...JOB_STATUS_FIELDS].sort(), 'job status.json fields');
      t.match(jobStatus, {
        invocation_id: id,
        service_id: 'echo',
        state: 'ok',
        exit_code: 0,
        signal: null,
        request_bytes: Buffer.byteLength(payload),
        error: '',
      });
    },
  },

  'after a failure: last_error.txt, status.json and the job keep the error; result.json is unchanged': {
    service: 'flaky',
    run: async (t, svc) => {
      await succeeded(t, svc.control('reset'), 'control/reset');
      await invoke(t, svc, '{"n":1}');
      const id = await invoke(t, svc, '{"do":"fail"}');
      const tree = await svc.tree();
      t.equal(textOf(tree['result.json']), '{"n":1}', 'result.json still holds the last success');
      t.equal(textOf(tree['last_error.txt']), 'flaky: asked to fail\n', "last_error.txt is the driver's stderr");
      t.match(jsonOf(tree['status.json']), { state: 'error', invocation_id: id, exit_code: 3, consecutive_failures: 1 });
      t.match(jsonOf(tree['health.json']), { state: 'degraded', last_error: 'flaky: asked to fail' });
      t.equal(textOf(tree[`jobs/${id}/stderr.txt`]), 'flaky: asked to fail\n');
      t.equal(textOf(tree[`jobs/${id}/result.json`]), '', 'a failed job has no result');
      t.match(jsonOf(tree[`jobs/${id}/status.json`]), { state: 'error', exit_code: 3, error: 'flaky: asked to fail' });
    },
  },

  "the live files read the same bytes, modes and times as on the node's own mount": {
    service: 'echo',
    run: async (t, svc, ctx) => {
      const controlTimes = (tree: Record<string, Entry>) => [tree['config.json']?.mtime_ms, tree['control/reset']?.mtime_ms];
      const beforeInvoke = controlTimes(await svc.tree());
      await invoke(t, svc, '{"n":6}');
      const [here, there] = await Promise.all([svc.tree(), ctx.onNode('echo').tree()]);
      t.same(controlTimes(here), beforeInvoke, 'config.json and the ctl files keep their times through an invocation (the last control write, else the load)');
      const live = Object.keys(there).filter((path) => there[path]?.type === 'file' && !(PROJECTIONS.node.catalogFiles as readonly string[]).includes(path));
      t.ok(live.length >= LIVE_FILES.length, `${live.length} live files`);
      const times = PROJECTIONS[ctx.projection].invokeFileTimes;
      const view = (e: Entry | undefined, withTimes: boolean): unknown =>
        e && { mode: e.mode, size: e.size, data: textOf(e), read_errno: e.read_errno, ...(withTimes ? { mtime_ms: e.mtime_ms } : {}) };
      for (const path of live) {
        const withTimes = path !== 'control/invoke.json' || times === 'status.json';
        t.same(view(here[path], withTimes), view(there[path], withTimes), `${path}: as on the node${withTimes ? '' : ' (but its times)'}`);
      }
      if (times === 'status.json') {
        t.equal(here['control/invoke.json']?.mtime_ms, here['status.json']?.mtime_ms, 'control/invoke.json has the times of status.json');
        return;
      }
      // The catalog entry changes after an invocation too (its supervision status): a look between two equal reads of it.
      const catalogMs = async (): Promise<number> =>
        (JSON.parse(await svc.fs.read(join(dirname(dirname(svc.path)), 'STATUS.json'))) as { updated_ms: number }).updated_ms;
      const seen = await waitFor(
        async () => {
          const [before, control, after] = [await catalogMs(), await svc.fs.tree(join(svc.path, 'control')), await catalogMs()];
          return before === after && { catalog: before, invokeFile: control['invoke.json']?.mtime_ms };
        },
        { what: 'a settled catalog entry' },
      );
      t.equal(seen.invokeFile, seen.catalog, "control/invoke.json has the times of the node's catalog entry");
    },
  },

  'config.json: {} until written, a whole object replaced by each write, EINVAL for a bad one': {
    service: 'gate',
    run: async (t, svc) => {
      t.teardown(async () => void (await svc.write('{}', 'w', 'config.json')));
      t.same(await svc.json('config.json'), {}, 'the default');
      const doc = { timeout_ms: 20_000, 'x-note': 'conformance' };
      t.same(await svc.write(JSON.stringify(doc), 'w', 'config.json'), { errno: null, step: null, out: '' }, 'a valid document');
      t.equal(await svc.text('config.json'), `${JSON.stringify(doc, null, 2)}\n`, 'reads back pretty-printed');
      t.match(await svc.health(), { last_control_op: 'config' }, 'recorded as a control op');
      const bad = await svc.write('{"timeot_ms": 1}', 'w', 'config.json');
      t.same({ errno: bad.errno, step: bad.step }, { errno: 'EINVAL', step: 'close' }, 'an unknown key: EINVAL at close()');
      t.match(await svc.text('last_error.txt'), /^EINVAL: services\/gate\/config\.json: .*timeot_ms/, 'named in last_error.txt');
      t.same(await svc.json('config.json'), doc, 'and nothing changed');
      const rdwr = await svc.write('{"x-rdwr": 1}', 'rdwr', 'config.json');
      t.same(rdwr.errno, null, 'an O_RDWR write');
      t.same(JSON.parse(rdwr.out), { 'x-rdwr': 1 }, 'reads back the committed document on the same descriptor');
      await succeeded(t, svc.write('{}', 'w', 'config.json'), 'config.json: {} again');
      t.same(await svc.json('config.json'), {}, 'back to {}');
    },
  },

  'commit rule: every common way of writing invokes once, with exactly the bytes written': {
    service: 'cat',
    run: async (t, svc, ctx) => {
      const a = join(ctx.scratch, 'a.json');
      const b = join(ctx.scratch, 'b.json');
      await writeFile(a, '{"a":[1,2,3]}\n');
      await writeFile(b, '{"cp":true}');
      const tools: Array<[string, string, string]> = [
        ['echo >', `echo '{"msg":"hi"}' > "$F"`, '{"msg":"hi"}\n'],
        ['printf >', `printf '%s' '{"msg":"hi"}' > "$F"`, '{"msg":"hi"}'],
        ['echo >> (O_APPEND)', `echo '{"msg":"hi"}' >> "$F"`, '{"msg":"hi"}\n'],
        ['cat file >', `cat ${q(a)} > "$F"`, '{"a":[1,2,3]}\n'],
        [
          '(echo; sleep; echo) >: a flush with an unfinished prefix, then the rest',
          `(echo '{"first":'; sleep 0.2; echo '"second"}') > "$F"`,
          '{"first":\n"second"}\n',
        ],
        ['cp', `cp ${q(b)} "$F"`, '{"cp":true}'],
        ['tee', `printf '{"tee":1}' | tee "$F" > /dev/null`, '{"tee":1}'],
        ['dd', `printf '{"dd":1}' | dd of="$F" status=none`, '{"dd":1}'],
        ['dd bs=3 conv=notrunc', `printf '{"dd":"small blocks"}' | dd of="$F" bs=3 conv=notrunc status=none`, '{"dd":"small blocks"}'],
        ['dd conv=fsync', `printf '{"q":1}' | dd of="$F" conv=fsync status=none`, '{"q":1}'],
        ['python open(w).write', `"$PYTHON" -c 'import os; open(os.environ["F"], "w").write("{\\"py\\": 1}")'`, '{"py": 1}'],
        ['bash exec fd', `exec 3>"$F"; printf '{"fd":3}' >&3; exec 3>&-`, '{"fd":3}'],
      ];
      await oddWrites(
        t,
        dirname(svc.path),
        tools.map(([name, command, result]) => ({ name, service: 'cat', code: TOOL, extras: [command], expect: { steps: [], invokes: 1, result } })),
      );
    },
  },

  'commit rule: payloads of 1 MiB and 5 MiB arrive whole, in one invocation': {
    service: 'bytes',
    run: async (t, svc, ctx) => {
      const cases: Array<OddWriteCase<ServiceId>> = [];
      for (const size of [1 << 20, 5 << 20]) {
        const body = JSON.stringify({ fill: 'x'.repeat(size) });
        const file = join(ctx.scratch, `big-${size}.json`);
        await writeFile(file, body);
        cases.push({
          name: `${body.length} bytes by cat >`,
          service: 'bytes',
          code: TOOL,
          extras: [`cat ${q(file)} > "$F"`],
          expect: { steps: [], invokes: 1, result: `${JSON.stringify({ bytes: body.length, md5: md5(body) })}\n` },
        });
      }
      await oddWrites(t, dirname(svc.path), cases);
    },
  },

  'commit rule: no-ops, refusals, and where each surfaces': {
    service: 'cat',
    run: async (t, svc) => {
      await oddWrites(t, dirname(svc.path), [
        { name: 'an open without a write (touch, : >)', service: 'cat', code: py`fd = opened(F); close(fd)`, expect: { steps: ok(2), invokes: 0 } },
        { name: 'only whitespace', service: 'cat', code: py`fd = opened(F); w(fd, b' \n\t\r\n'); close(fd)`, expect: { steps: ok(3), invokes: 0 } },
        {
          name: 'truncate(0) by path, then a write',
          service: 'cat',
          code: py`step(lambda: os.truncate(F, 0)); fd = opened(F, os.O_WRONLY); w(fd, b'{"tr":0}'); close(fd)`,
          expect: { steps: ok(4), invokes: 1, result: '{"tr":0}' },
        },
        {
          name: 'truncate to more than 0 by path: EINVAL, recorded',
          service: 'cat',
          code: py`step(lambda: os.truncate(F, 3))`,
          expect: { steps: ['EINVAL'], invokes: 0, error: /^EINVAL: control\/invoke\.json: can be truncated only to 0, not 3/ },
        },
        {
          name: 'ftruncate(0), fsync and fdatasync in the middle: no-ops',
          service: 'cat',
          code: py`fd = opened(F); w(fd, b'{"fs":'); step(lambda: os.fsync(fd)); step(lambda: os.ftruncate(fd, 0)); w(fd, b'1}'); step(lambda: os.fdatasync(fd)); close(fd)`,
          expect: { steps: ok(7), invokes: 1, result: '{"fs":1}' },
        },
        refusedAtClose('invalid JSON: EINVAL at close()', 'cat', 'F', py`b'{"msg": oops}'`, /^EINVAL: control\/invoke\.json: invalid JSON/),
        refusedAtClose(
          'not a JSON object: EINVAL at close()',
          'cat',
          'F',
          py`b'[1,2]'`,
          /^EINVAL: control\/invoke\.json: payload must be a JSON object, got an array/,
        ),
        refusedAtClose('a schema.input violation: EINVAL naming the field', 'echo', 'F', py`b'{"n":"seven"}'`, /^EINVAL: .*\/n: must be integer/),
        {
          name: 'a hole: EINVAL at that write and at close()',
          service: 'cat',
          code: py`fd = opened(F); pw(fd, b'{}', 10); close(fd)`,
          expect: { steps: ['ok', 'EINVAL', 'EINVAL'], invokes: 0, error: /^EINVAL: control\/invoke\.json: write at offset 10 leaves a hole/ },
        },
        {
          name: 'past max_input_bytes: EFBIG at the crossing write and at close()',
          service: 'small',
          code: py`fd = opened(F); w(fd, b'{"a":"' + b'x' * 594); w(fd, b'x' * 600); close(fd)`,
          expect: {
            steps: ['ok', 'ok', 'EFBIG', 'EFBIG'],
            invokes: 0,
            error: new RegExp(`^EFBIG: control/invoke\\.json: payload of 1200 bytes or more exceeds runtime\\.max_input_bytes \\(${SMALL_LIMIT} bytes\\)`),
          },
        },
        {
          name: 'invalid JSON in a transaction: EINVAL at the committing read',
          service: 'cat',
          code: py`fd = opened(F, os.O_RDWR); w(fd, b'{oops'); step(lambda: os.read(fd, 100)); close(fd)`,
          expect: { steps: ['ok', 'ok', 'EINVAL', 'ok'], invokes: 0, error: /^EINVAL: control\/invoke\.json: invalid JSON/ },
        },
        {
          name: 'an unfinished document at the last close: refused at release, recorded',
          service: 'cat',
          release: true,
          code: py`fd = opened(F); w(fd, b'{"a":'); close(fd)`,
          expect: { steps: ok(3), invokes: 0, error: /^EINVAL: control\/invoke\.json: invalid JSON/ },
        },
      ]);
    },
  },

  'errnos of the tree': {
    service: 'echo',
    run: async (t, svc) => {
      const id = await invoke(t, svc, '{"n":8}');
      const before = await svc.tree();
      const answers = await svc.fs.errnos(svc.path, id);
      const expected = (what: string): string => {
        if (what.startsWith('create')) return 'EACCES';
        if (/^(mkdir|rmdir|unlink|rename|link|symlink|mknod|chmod|chown)/.test(what)) return 'EPERM';
        if (what === 'open control/ for writing') return 'EISDIR';
        if (what.startsWith('open') || what.startsWith('truncate')) return 'EACCES';
        if (/^(utimens|fsync|fdatasync)/.test(what)) return 'ok';
        if (/xattr$/.test(what)) return 'ENOTSUP';
        if (what === 'a missing name' || what === 'a missing job') return 'ENOENT';
        if (what === 'a path through a file') return 'ENOTDIR';
        return `no expectation for ${what}`;
      };
      t.same(
        answers,
        Object.fromEntries(Object.keys(answers).map((what) => [what, expected(what)])),
        'SPEC §3: create EACCES; mkdir ... chown EPERM; a mode the file lacks EACCES; utimens, fsync and fdatasync 0 (no-ops)',
      );
      const after = await svc.tree();
      const names = (tree: Tree): string[] => Object.keys(tree).sort();
      t.same(names(after), names(before), 'nothing was added or removed');
      t.same(
        Object.fromEntries(Object.entries(after).map(([p, e]) => [p, e.mode])),
        Object.fromEntries(Object.entries(before).map(([p, e]) => [p, e.mode])),
        'no mode changed',
      );
      t.not(after['status.json']?.mtime_ms, 1000, 'utimens left the times alone');
    },
  },

  "transactions: an O_RDWR write then read returns that invocation's own outcome": {
    service: 'cat',
    run: async (t, svc, ctx) => {
      const small = await svc.write('{"txn": 1}', 'rdwr', undefined, 7);
      t.same(small, { errno: null, step: null, out: '{"txn": 1}' }, 'read 7 bytes at a time: the outcome from its start, then end of file');
      const failed = await ctx.service('flaky').write('{"do":"fail"}', 'rdwr');
      t.equal(failed.errno, null, 'a driver failure is not a file system error');
      t.match(
        JSON.parse(failed.out),
        { error: 'flaky: asked to fail', state: 'error', invocation_id: String, status: { service_id: 'flaky', state: 'error', exit_code: 3 } },
        'a failure reads back as {error, state, invocation_id, status}',
      );
      const body = JSON.stringify({ fill: 'y'.repeat(700 * 1024) });
      const large = await svc.write(body, 'rdwr');
      t.equal(large.errno, null, 'a 700 KiB transaction');
      t.equal(md5(large.out), md5(body), 'an outcome longer than one relay chunk comes back whole');
      // bash writes through a duplicate (dup2 onto stdout) and closes it after the write: that close's flush commits.
      const F = q(join(svc.path, 'control', 'invoke.json'));
      const viaDuplicate = await sh(`exec 3<>${F}; echo '{"dup": 1}' >&3; cat <&3`);
      t.same(
        { code: viaDuplicate.code, out: viaDuplicate.stdout, err: viaDuplicate.stderr },
        { code: 0, out: '{"dup": 1}\n', err: '' },
        "committed by a duplicate's close (bash's >&3): the read on the open still returns that invocation's outcome",
      );
      const refused = await sh(`exec 3<>${F}; echo '[1]' >&3; cat <&3`);
      t.match(
        { code: refused.code, err: refused.stderr },
        { code: 1, err: /Invalid argument/ },
        "refused at a duplicate's close, which bash does not report: the read on the open says so",
      );
    },
  },

  "transactions: concurrent writers never see each other's results": {
    service: 'slow',
    run: async (t, svc) => {
      const payloads = Array.from({ length: 6 }, (_, i) => ({ writer: i }));
      const before = await svc.metrics();
      const outcomes = await Promise.all(payloads.map((p) => svc.write(JSON.stringify(p), 'rdwr')));
      outcomes.forEach((o, i) =>
        t.same(
          { errno: o.errno, out: o.errno ? o.out : JSON.parse(o.out) },
          { errno: null, out: { slept: true, echo: payloads[i] } },
          `writer ${i} read its own result`,
        ),
      );
      t.equal((await svc.metrics()).invokes_total, before.invokes_total + payloads.length, 'one invocation each');
    },
  },

  'control/disable refuses invokes with EPERM; control/enable takes them again': {
    service: 'gate',
    run: async (t, svc, ctx) => {
      t.teardown(async () => void (await svc.control('enable')));
      const step = PROJECTIONS[ctx.projection].admissionStep;
      const before = await svc.metrics();
      await succeeded(t, svc.control('disable'), 'echo 1 > control/disable');
      t.match(await svc.status(), { state: 'offline', reason: /disable/ });
      t.match(await svc.health(), { state: 'offline', enabled: false, last_control_op: 'disable' });
      const refused = await svc.write('{"n":1}');
      t.same({ errno: refused.errno, step: refused.step }, { errno: 'EPERM', step }, `EPERM at ${step}()`);
      const tool = await sh(`/bin/echo '{}' > ${q(join(svc.path, 'control', 'invoke.json'))}`);
      t.not(tool.code, 0, '/bin/echo reports it');
      t.match(tool.stderr, /Operation not permitted/);
      t.match(await svc.text('last_error.txt'), /^EPERM: .*disabled/, 'named in last_error.txt');
      t.match(await svc.status(), { state: 'offline', errno: 'EPERM' });
      const after = await svc.metrics();
      t.same(
        { invokes: after.invokes_total - before.invokes_total, rejected: after.rejected_total - before.rejected_total },
        { invokes: 0, rejected: 2 },
        'nothing ran; both refusals counted',
      );

      await succeeded(t, svc.control('enable'), 'echo 1 > control/enable');
      t.match(await svc.status(), { state: 'idle' });
      t.match(await svc.health(), { state: 'online', enabled: true, last_control_op: 'enable' });
      await invoke(t, svc, '{"after":"enable"}');
      t.match(await svc.json('result.json'), { echo: { after: 'enable' } }, 'invokes work again');
      t.equal(await svc.text('last_error.txt'), '');
    },
  },

  'a cooldown refuses invokes with EAGAIN; control/restart ends it': {
    service: 'cooling',
    run: async (t, svc, ctx) => {
      t.teardown(async () => {
        await svc.write('{}', 'w', 'config.json');
        await svc.control('restart');
      });
      const step = PROJECTIONS[ctx.projection].admissionStep;
      await succeeded(t, svc.write('{"supervision":{"cooldown_ms":600000}}', 'w', 'config.json'), 'a cooldown policy in config.json');
      await invoke(t, svc, '{}');
      t.match(await svc.status(), { state: 'backoff', retry_after_ms: Number, exit_code: 3 }, 'the failure starts a cooldown');
      const h = await svc.health();
      t.match(h, { state: 'degraded', cooldown_until_ms: Number });
      t.ok(Number(h.cooldown_remaining_ms) > 0, `cooldown_remaining_ms ${String(h.cooldown_remaining_ms)}`);
      const refused = await svc.write('{}');
      t.same({ errno: refused.errno, step: refused.step }, { errno: 'EAGAIN', step }, `EAGAIN at ${step}()`);
      t.match(await svc.text('last_error.txt'), /^EAGAIN: .*cool/, 'named in last_error.txt');
      t.match(await svc.status(), { state: 'backoff', errno: 'EAGAIN' });
      await succeeded(t, svc.control('restart'), 'control/restart');
      t.match(await svc.health(), { cooldown_until_ms: null, cooldown_remaining_ms: 0 }, 'the cooldown is over');
    },
  },

  'control/restart counts a restart and clears the last error': {
    service: 'flaky',
    run: async (t, svc) => {
      await invoke(t, svc, '{"do":"fail"}');
      t.not(await svc.text('last_error.txt'), '', 'a failure is recorded');
      const restarts = Number((await svc.health()).restarts_total);
      await succeeded(t, svc.control('restart'), 'echo 1 > control/restart');
      t.match(await svc.health(), { restarts_total: restarts + 1, last_control_op: 'restart', last_error: '' });
      t.equal(await svc.text('last_error.txt'), '', 'last_error.txt is empty');
    },
  },

  'control/reset: back to idle, identity kept, consecutive counters zeroed, totals kept': {
    service: 'flaky',
    run: async (t, svc) => {
      await invoke(t, svc, '{"n":1}');
      await invoke(t, svc, '{"do":"fail"}');
      const before = await svc.metrics();
      t.equal(before.consecutive_failures, 1);
      await succeeded(t, svc.control('reset'), 'echo 1 > control/reset');
      t.equal(await svc.text('result.json'), `${JSON.stringify({ service_id: 'flaky', state: 'idle' }, null, 2)}\n`, 'result.json is the idle document');
      t.match(await svc.status(), {
        service_id: 'flaky',
        runtime: { type: 'native_proc' },
        state: 'idle',
        invocation_id: null,
        exit_code: null,
        updated_ms: null,
      });
      t.equal(await svc.text('last_error.txt'), '');
      t.match(await svc.metrics(), {
        consecutive_failures: 0,
        consecutive_timeouts: 0,
        failures_total: before.failures_total,
        invokes_total: before.invokes_total,
      });
      t.match(await svc.health(), { state: 'online', last_control_op: 'reset' });
    },
  },

  "jobs/<id>/cancel ends one invocation, control/cancel the rest; each writer's close() returns": {
    service: 'hang',
    run: async (t, svc) => {
      const before = await svc.metrics();
      const writers = [1, 2].map((n) => svc.write(`{"w":${n}}`));
      const running = await waitFor(
        async () => {
          const s = await svc.status();
          return s.running === 2 && s;
        },
        { what: 'two hang invocations running', timeoutMs: 30_000 },
      );
      t.equal(running.state, 'running');
      const [first, second] = (await svc.fs.list(join(svc.path, 'jobs'))).slice(-2);
      await succeeded(t, svc.write('1\n', 'w', `jobs/${first}/cancel`), `jobs/${first}/cancel`);
      await waitFor(async () => (await svc.json(`jobs/${first}/status.json`)).state === 'cancelled', { what: 'the first job cancelled' });
      t.match(await svc.json(`jobs/${second}/status.json`), { state: 'running' }, 'the other job still runs');
      await succeeded(t, svc.control('cancel'), 'echo 1 > control/cancel');
      for (const w of await Promise.all(writers)) t.same(w, { errno: null, step: null, out: '' }, "the writer's close() returned 0");
      t.match(await svc.status(), { state: 'cancelled', running: 0 });
      t.match(await svc.text('last_error.txt'), /cancelled/);
      const after = await svc.metrics();
      const delta = (key: keyof Metrics): number => after[key] - before[key];
      t.same(
        { cancelled: delta('cancelled_total'), invokes: delta('invokes_total'), failures: delta('failures_total'), timeouts: delta('timeouts_total') },
        { cancelled: 2, invokes: 2, failures: 0, timeouts: 0 },
        'two cancelled, neither a failure nor a timeout',
      );
    },
  },
  'a service removed by a reload: each later use of a file opened before is ENOENT, also once a service of the same id is back': {
    service: 'gone',
    run: async (t, svc, ctx) => {
      const { fs } = svc;
      const at = (name: string): string => join(svc.path, name);
      const manifestFile = join(ctx.servicesDir, 'gone.json');
      const away = join(ctx.servicesDir, '.gone.json.away'); // a dot name is not loaded
      const shown = async (): Promise<string | undefined> => (await fs.stat(dirname(svc.path), [basename(svc.path)]))[basename(svc.path)];
      // Opened while the service is there: a set used once it is gone, a set used once it is back.
      const [writer, reader, laterWriter, laterReader] = await Promise.all([
        fs.open(at('control/invoke.json'), 'w'),
        fs.open(at('status.json'), 'r'),
        fs.open(at('control/invoke.json'), 'w'),
        fs.open(at('status.json'), 'r'),
      ]);
      t.match(await fs.use(reader, 'pread'), /^ok \{/, 'status.json reads while the service is there');
      t.equal(await fs.use(laterWriter, 'write', '{"n":2}'), 'ok', 'a whole payload written, committed by nothing yet');
      await rename(manifestFile, away);
      t.teardown(() => rename(away, manifestFile).catch(() => undefined));
      await waitFor(async () => (await shown()) === 'ENOENT', { what: 'the service gone from this mount', timeoutMs: 30_000 });
      const gone = {
        'invoke.json write': await fs.use(writer, 'write', '{"n":1}'),
        'invoke.json ftruncate': await fs.use(writer, 'ftruncate'),
        'invoke.json fsync': await fs.use(writer, 'fsync'),
        'invoke.json close': await fs.use(writer, 'close'),
        'status.json read': await fs.use(reader, 'pread'),
        'status.json close': await fs.use(reader, 'close'),
      };
      t.same(
        gone,
        {
          'invoke.json write': 'ENOENT',
          'invoke.json ftruncate': 'ENOENT',
          'invoke.json fsync': 'ENOENT',
          'invoke.json close': 'ENOENT',
          'status.json read': 'ENOENT',
          'status.json close': 'ok',
        },
        'removed: every use is ENOENT (docs/node-tree.md, errno table); the close of a read-only file has nothing to fail',
      );
      await rename(away, manifestFile);
      await waitFor(async () => (await shown()) === 'ok' && (await svc.status()), { what: 'the service back on this mount', timeoutMs: 30_000 });
      t.same(
        { read: await fs.use(laterReader, 'pread'), close: await fs.use(laterWriter, 'close') },
        { read: 'ENOENT', close: 'ENOENT' },
        'back under the same id, it is another service: files opened on the one before stay ENOENT',
      );
      await fs.use(laterReader, 'close');
      await invoke(t, svc, '{"n":3}');
      t.match(await svc.metrics(), { invokes_total: 1 }, 'the new service ran only the invocation made on it: no file opened before committed into it');
    },
  },
};

/** The mount to run the suite on. */
export interface SuiteMount {
  projection: Projection;
  nodeId: string;
  /** The node's services directory (its manifests). */
  servicesDir: string;
  /** A service's directory on this mount. */
  service(id: ServiceId): string;
}

/**
 * Runs every case against a mount (go-fuse's posixtest `All`), each a subtest named for it, through
 * one child process; `onNode` is the node's own mount of the same node, `scratch` a directory
 * outside every mount.
 */
export async function serviceFilesSuite(t: Test, mount: SuiteMount, onNode: (id: ServiceId) => string, scratch: string): Promise<void> {
  const fs = await ChildFs.start(t);
  const context: ServiceFilesContext = {
    projection: mount.projection,
    nodeId: mount.nodeId,
    service: (id) => new ServiceDir(fs, mount.service(id)),
    onNode: (id) => new ServiceDir(fs, onNode(id)),
    scratch,
    servicesDir: mount.servicesDir,
  };
  for (const [name, c] of Object.entries(SERVICE_FILES_CASES)) await t.test(name, (tt) => c.run(tt, context.service(c.service), context));
}
