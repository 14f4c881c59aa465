// docs/schemas/node-tree.schema.json describes what the node daemon really renders: the documents
// built by src/node/render.ts for services in every state (idle, running with a queue, ok, failed,
// refused, cooling down, disabled, interrupted by a crash), a failed invocation's outcome, NODE.json
// standalone and joined, SERVICES.json with a catalog-only service, and HOST.json of every host kind
// match it; and it is strict (an extra member, a missing one or a wrong type is named).
import t, { type Test } from 'tap';
import { copyFile, mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { pino } from 'pino';
import { DRIVERS, REPO, tempDir } from '../../helpers/node.js';
import { FsError } from '../../../src/errors/errno.js';
import { applyDefaults, type LoadedService } from '../../../src/manifest/index.js';
import {
  nodeDocument,
  renderHealth,
  renderHost,
  renderJobStatus,
  renderMetrics,
  renderOutcome,
  renderStatus,
  servicesDocument,
  type NodeFacts,
} from '../../../src/node/render.js';
import type { NodeService } from '../../../src/node/service-registry.js';
import { WasmServices } from '../../../src/node/wasm-services.js';
import { loadSchemas, SCHEMA_BASE } from '../../../src/protocol/schemas.js';
import type { Manifest, ServiceDescriptor } from '../../../src/protocol/types.gen.js';
import { InvocationIds } from '../../../src/runtime/invocation-id.js';
import type { JobRecord } from '../../../src/runtime/job.js';
import { LiveService } from '../../../src/runtime/live-service.js';
import { nativeProcAdapter } from '../../../src/runtime/native-proc-adapter.js';
import { runDriver } from '../../../src/runtime/run-driver.js';

const schemas = await loadSchemas();
const TREE = `${SCHEMA_BASE}node-tree.schema.json#/definitions/`;
const problems = (definition: string, value: unknown): string[] => schemas.problems(TREE + definition, value, 'doc').map((p) => p.message);

const descriptor = (id: string, extra: Record<string, unknown> = {}): ServiceDescriptor =>
  applyDefaults({ service_id: id, kind: 'test', ...extra } as unknown as Manifest, 'n1');

/** A service running a fixture driver in process (the real runDriver; no spawner, no FUSE). */
function live(id: string, driver: string, options: { maxConcurrency?: number; jobs?: JobRecord[] } = {}): LiveService {
  return new LiveService({
    serviceId: id,
    runner: { run: runDriver },
    ids: new InvocationIds(),
    ...(options.jobs ? { restored: { jobs: options.jobs } } : {}),
    settings: {
      limits: { maxConcurrency: options.maxConcurrency ?? 1, maxQueue: 8, maxInputBytes: 1 << 20, timeoutMs: 10_000, killGraceMs: 200 },
      jobsKeep: 8,
      adapter: nativeProcAdapter({
        nodeId: 'n1',
        serviceId: id,
        executablePath: join(DRIVERS, driver),
        args: [],
        cwd: '/tmp',
        env: { SLOW_SECONDS: '0.5' },
        envPassthrough: [],
        timeoutMs: 10_000,
        killGraceMs: 200,
        maxOutputBytes: 1 << 20,
      }),
    },
  });
}

/** Every document of one service's directory, parsed, with the status.json `state` it shows. */
function documents(rt: LiveService): { state: string; status: unknown; metrics: unknown; health: unknown; jobs: unknown[] } {
  const { view } = rt;
  const status = JSON.parse(renderStatus(view, descriptor(view.serviceId))) as { state: string };
  return {
    state: status.state,
    status,
    metrics: JSON.parse(renderMetrics(view)),
    health: JSON.parse(renderHealth(view)),
    jobs: view.jobs.list().map((job) => JSON.parse(renderJobStatus(view, job))),
  };
}

function check(t: Test, what: string, docs: ReturnType<typeof documents>): void {
  t.same(problems('service_status', docs.status), [], `${what}: status.json`);
  t.same(problems('service_metrics', docs.metrics), [], `${what}: metrics.json`);
  t.same(problems('service_health', docs.health), [], `${what}: health.json`);
  for (const job of docs.jobs) t.same(problems('job_status', job), [], `${what}: jobs/*/status.json`);
}

t.test("a service's documents in every state match their schemas", async (t) => {
  const idle = live('idle', 'cat');
  t.equal(documents(idle).state, 'idle');
  check(t, 'idle', documents(idle));

  const busy = live('busy', 'slow');
  const runs = [busy.invoke(Buffer.from('{"n":1}')), busy.invoke(Buffer.from('{"n":2}'))];
  const running = documents(busy);
  t.same([running.state, (running.status as { queued: number }).queued], ['running', 1], 'one runs, one waits');
  check(t, 'running', running);
  await Promise.all(runs);
  t.equal(documents(busy).state, 'ok');
  check(t, 'ok', documents(busy));

  const refused = live('refused', 'cat');
  await t.rejects(refused.invoke(Buffer.from('{bad')), FsError);
  t.match(documents(refused).status, { state: 'error', errno: 'EINVAL' });
  check(t, 'refused', documents(refused));

  const cooling = live('cooling', 'fail');
  await cooling.setConfig({ supervision: { cooldown_ms: 60_000 } });
  const failed = await cooling.invoke(Buffer.from('{}'));
  t.match(documents(cooling).status, { state: 'backoff', retry_after_ms: Number });
  check(t, 'backoff', documents(cooling));
  const failure = JSON.parse(renderOutcome(cooling.view, descriptor('cooling'), failed).toString('utf8')) as unknown;
  t.same(problems('invoke_failure', failure), [], 'the failure an O_RDWR transaction reads back');
  t.match(
    failure,
    { state: 'error', invocation_id: failed.invocationId, error: 'fail driver: something went wrong', status: { state: 'backoff' } },
    "its own end state beside the service's",
  );

  const disabled = live('disabled', 'fail');
  await disabled.setConfig({ supervision: { max_consecutive_failures: 1 } });
  await disabled.invoke(Buffer.from('{}'));
  t.match(documents(disabled).health, { state: 'offline', reason: /^auto-disabled: / });
  check(t, 'auto-disabled', documents(disabled));
  await disabled.control('restart');
  check(t, 'after control/restart', documents(disabled));

  const crashed: JobRecord = {
    invocationId: '1796374146946-0000',
    state: 'running',
    requestBase64: Buffer.from('{}').toString('base64'),
    queuedMs: 1796374146946,
    startedMs: 1796374146950,
    finishedMs: null,
    durationMs: null,
    exitCode: null,
    signal: null,
    resultBase64: null,
    error: '',
    stderrBase64: '',
  };
  const interrupted = live('interrupted', 'cat', { jobs: [crashed] });
  t.match(documents(interrupted).jobs, [{ state: 'error', finished_ms: null, error: /^interrupted: / }]);
  check(t, 'interrupted by a crash', documents(interrupted));
});

t.test('NODE.json, SERVICES.json and HOST.json of every host kind match their schemas', async (t) => {
  const dir = await tempDir(t);
  const wasmDescriptor = descriptor('wasm-echo', {
    runtime: { type: 'wasm', module_path: 'echo.wasm', wasm: { preopens: [{ host_path: join(dir, 'data'), guest_path: '/data' }] } },
  });
  await Promise.all([mkdir(join(dir, 'wasm')), mkdir(join(dir, 'data'))]);
  const modulePath = join(dir, 'wasm', 'echo.wasm');
  await copyFile(join(REPO, 'wasm', 'build', 'echo.wasm'), modulePath);
  const loaded: LoadedService = { descriptor: wasmDescriptor, source: join(dir, 'wasm', 'echo.json'), modulePath };
  const wasm = new WasmServices(pino({ level: 'silent' }));
  t.teardown(() => wasm.close());
  const { ok, problems: refused } = await wasm.check([loaded], join(dir, 'mnt'));
  t.same(refused, [], 'the wasm module is accepted');
  const wasmHost = ok[0] && wasm.hostInfo(ok[0]);
  t.ok(wasmHost, 'a checked wasm service has a host');

  const services: NodeService[] = [
    { descriptor: descriptor('fs'), source: 'built-in fs', hostKind: 'static_linked', treePath: 'fs', loadedMs: 1 },
    { descriptor: descriptor('echo'), source: 'echo.json', hostKind: 'native_process', runtime: live('echo', 'cat'), treePath: 'services/echo', loadedMs: 1 },
    { descriptor: descriptor('catalog-only', { state: 'maintenance' }), source: 'c.json', hostKind: 'native_process', treePath: null, loadedMs: 1 },
    {
      descriptor: wasmDescriptor,
      source: loaded.source,
      hostKind: 'wasm_worker',
      runtime: live('wasm-echo', 'cat'),
      treePath: 'services/wasm-echo',
      loadedMs: 1,
      ...(wasmHost ? { wasm: wasmHost } : {}),
    },
  ];
  for (const s of services) {
    const host = JSON.parse(renderHost(s.descriptor, s.hostKind, s.wasm)) as unknown;
    t.same(problems('host_document', host), [], `${s.hostKind}: HOST.json`);
  }
  const listed = JSON.parse(JSON.stringify(servicesDocument(services))) as unknown;
  t.same(problems('services_document', listed), [], 'SERVICES.json');
  t.match(listed, [{ path: 'fs' }, { state: 'online' }, { state: 'maintenance', path: null }, {}]);

  const facts: NodeFacts = {
    nodeId: 'n1',
    labels: { rack: 'r1' },
    mount: '/mnt/n1',
    startedMs: 5,
    controlUrls: [],
    control: undefined,
    driverSpawnerExit: undefined,
    services,
    manifestErrors: 2,
  };
  const joined: NodeFacts = {
    ...facts,
    controlUrls: ['ws://a:1', 'ws://b:2'],
    control: { state: 'disconnected', url: 'ws://b:2', connectedMs: null, lastError: 'connect ECONNREFUSED' },
  };
  const spawnerLost: NodeFacts = { ...facts, driverSpawnerExit: { reason: 'driver spawner exited (SIGKILL)', exitedMs: 9 } };
  for (const [what, node] of [
    ['standalone', facts],
    ['joined', joined],
    ['spawner lost', spawnerLost],
  ] as const) {
    t.same(problems('node_document', JSON.parse(JSON.stringify(nodeDocument(node)))), [], `${what}: NODE.json`);
  }
  t.same(nodeDocument(facts).driver_spawner, { state: 'running', exited_ms: null, error: null });
  t.same(nodeDocument(spawnerLost).driver_spawner, { state: 'exited', exited_ms: 9, error: 'driver spawner exited (SIGKILL)' });
});

t.test('strict: a wrong type, a missing member and an extra one are each named', async (t) => {
  const { status, health } = documents(live('s', 'cat'));
  const base = status as Record<string, unknown>;
  t.same(problems('service_status', { ...base, running: '0' }), ['doc: /running: must be integer']);
  const { invokes_total: _total, ...missing } = base;
  t.same(problems('service_status', missing), ['doc: /invokes_total: is required']);
  t.same(problems('service_status', { ...base, surprise: 1 }), ['doc: /surprise: unknown key']);
  t.same(problems('service_health', { ...(health as Record<string, unknown>), state: 'sleepy' }), [
    'doc: /state: must be one of "online", "degraded", "offline"',
  ]);
});
