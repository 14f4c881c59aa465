// Issue 10, "How to tell it worked", the control server's part (bounded: about a minute and a half).
// (a) kill -9 of `acheron control` at random moments while simulated nodes upsert without pause and
// watchers watch, resuming with since_seq after each restart: every upsert whose reply arrived is in
// the catalog after the restart, and no watcher sees a seq reused or skipped (a gap only after
// resync_required, which only a loss reported by the server may cause). (b) a seeded fuzzer of
// control frames (malformed envelopes, wrong types, huge and odd ids, unknown ops, bad payloads per
// op, binary frames, invalid UTF-8, deep nesting, oversize) at a live server: each gets the right
// error code naming the field, or the documented close; the server never crashes and other
// connections are unaffected. Repeat a run with ACHERON_TEST_SEED=<the seed it prints>.
import t from 'tap';
import { readFile } from 'node:fs/promises';
import { isDeepStrictEqual } from 'node:util';
import type { ServiceDescriptor } from '../../src/protocol/types.gen.js';
import { historyOf, ResumingWatcher, SimNode } from '../helpers/catalog-sim.js';
import { session, startControl, type Frame, type RawPeer } from '../helpers/control.js';
import { checkReference, emitted, validateWatcher } from '../helpers/history-validator.js';
import { waitFor } from '../helpers/process.js';
import { prng, reliabilityScale, testSeed } from '../helpers/random.js';
import { settledWithin } from '../helpers/settle.js';

/** Part (a) starts no new kill after this long (it needs at least MIN_KILLS); part (b) sends at most FRAMES. */
const scale = reliabilityScale();
const KILL_PHASE_MS = 25_000 * scale;
const MIN_KILLS = 3;
const MAX_KILLS = 12 * scale;
const FRAMES = 600 * scale;

const seed = testSeed();
t.comment(`seed ${seed} (repeat with ACHERON_TEST_SEED=${seed})`);
const random = prng(seed);
const pick = <T>(items: readonly T[]): T => items[Math.floor(random() * items.length)] as T;
const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

let control = await startControl(t);
const ports = { ws: Number(new URL(control.url).port), http: Number(new URL(control.httpUrl).port) };
let kills = 0;
let framesFuzzed = 0;
const failures: string[] = [];
t.teardown(() => void t.comment(`control server kills: ${kills}, frames fuzzed: ${framesFuzzed}, failures: ${failures.length}`));

/** What the server logged about seqs it will never use again (a torn tail found at start-up). */
async function reportedLosses(): Promise<number> {
  return (await readFile(control.logFile, 'utf8')).split('are never used again').length - 1;
}

/** A node that upserts without pause; what it was last told is stored, and what it sent when the server died. */
interface Tracked {
  node: SimNode;
  acked: ServiceDescriptor[];
  inFlight: ServiceDescriptor[] | undefined;
}

await t.test('(a) kill -9 at random moments under upserts and resuming watchers: nothing acknowledged lost, no seq reused or skipped', async (tt) => {
  const nodes = await Promise.all(['k1', 'k2', 'k3'].map((id) => SimNode.join(control.url, control.dataDir, id)));
  const tracked: Tracked[] = nodes.map((node) => ({ node, acked: [], inFlight: undefined }));
  const reference = new ResumingWatcher('reference', control.adminToken, { since_seq: 0 }, { relist: true });
  const watchers = [
    reference,
    new ResumingWatcher('all-default', control.adminToken, {}, { relist: true }),
    new ResumingWatcher('k1-since0', control.adminToken, { node_id: 'k1', since_seq: 0 }, { relist: true }),
    new ResumingWatcher('k2-limit2', control.adminToken, { node_id: 'k2', replay_limit: 2 }, { relist: true }),
  ];
  for (const w of watchers) await w.connect(control.url);

  /** Closed while the server is down: workers wait there, so the catalog is checked with nothing in flight. */
  let gate: { open: Promise<void>; release(): void } = { open: Promise.resolve(), release: () => undefined };
  const closeGate = (): void => {
    let release = (): void => undefined;
    gate = { open: new Promise<void>((resolve) => (release = resolve)), release: () => release() };
  };
  let busy = 0;
  let stopping = false;
  let acks = 0;
  const mutate = (node: SimNode): void => {
    const id = `s${Math.floor(random() * 5)}`;
    if (random() < 0.25) node.services.delete(id);
    else node.services.set(id, String(Number(node.services.get(id) ?? 0) + 1));
  };
  const work = async (entry: Tracked): Promise<void> => {
    while (!stopping) {
      await gate.open;
      if (stopping) return;
      mutate(entry.node);
      entry.inFlight = entry.node.descriptors();
      busy++;
      const frame = await entry.node.upsert().catch(() => undefined);
      busy--;
      if (frame?.ok === true) {
        entry.acked = (frame.payload as { services: ServiceDescriptor[] }).services;
        entry.inFlight = undefined;
        acks++;
      } else if (frame) failures.push(`${entry.node.nodeId}: an upsert refused while the server was up: ${JSON.stringify(frame.error)}`);
      // No frame: the server died under it; the kill loop checks the catalog before the gate opens again.
    }
  };
  const workers = tracked.map(work);

  const started = Date.now();
  let maxSeenBeforeCrash = 0;
  while (kills < MAX_KILLS && (kills < MIN_KILLS || Date.now() - started < KILL_PHASE_MS)) {
    await sleep(150 + random() * 700);
    // The gate closes and the server dies in the same turn: upserts are in flight at a random point.
    closeGate();
    for (const w of watchers) w.serverGone();
    maxSeenBeforeCrash = Math.max(maxSeenBeforeCrash, ...watchers.map((w) => w.position ?? 0));
    tt.equal((await control.kill9()).signal, 'SIGKILL', `kill ${kills + 1}: the server died of SIGKILL`);
    kills++;
    await waitFor(() => busy === 0, { what: 'every in-flight upsert to end with the connection' });
    // Owned by the file, not this subtest: part (b) fuzzes the same server.
    control = await startControl(t, { dataDir: control.dataDir, ports, tokens: { admin: control.adminToken, user: control.userToken } });
    const admin = await session(control.url, { token: control.adminToken });
    for (const entry of tracked) {
      const stored = (await admin.call<{ services: ServiceDescriptor[] }>('control.node_service_get', { node_id: entry.node.nodeId })).services;
      if (isDeepStrictEqual(stored, entry.acked)) continue;
      // Written but not answered before the kill: durable, so it counts from now on.
      if (entry.inFlight && isDeepStrictEqual(stored, entry.inFlight)) entry.acked = entry.inFlight;
      else
        failures.push(
          `kill ${kills}: node ${entry.node.nodeId} lost an acknowledged catalog: stored ${JSON.stringify(stored.map((s) => [s.service_id, s.version]))}, acknowledged ${JSON.stringify(entry.acked.map((s) => [s.service_id, s.version]))}`,
        );
    }
    const head = (await admin.call<{ head_seq: number }>('control.node_service_watch', { replay_limit: 0 })).head_seq;
    if (head < maxSeenBeforeCrash)
      failures.push(`kill ${kills}: head_seq ${head} is behind seq ${maxSeenBeforeCrash}, seen before the crash: a seq would be reused`);
    await admin.close();
    for (const entry of tracked) {
      entry.inFlight = undefined;
      await entry.node.reconnect(control.url);
    }
    for (const w of watchers) await w.connect(control.url);
    gate.release();
  }
  closeGate();
  await waitFor(() => busy === 0, { what: 'the last upserts' });
  stopping = true;
  gate.release();
  await Promise.all(workers);

  // A last known change per node, then every watcher resumes to the head.
  for (const node of nodes) {
    node.services.set('final', '1');
    await node.publish();
  }
  const probe = await session(control.url, { token: control.adminToken });
  const head = (await probe.call<{ head_seq: number }>('control.node_service_watch', { replay_limit: 0 })).head_seq;
  for (const w of watchers) {
    await w.connect(control.url);
    await w.synced();
    await w.reach(head);
  }
  const all = historyOf(reference);
  const losses = await reportedLosses();
  const relists = watchers.flatMap((w) => w.resyncs.map((message) => `${w.name}: ${message}`));
  tt.comment(`${acks} upserts acknowledged, ${all.length} events, head_seq ${head}, ${losses} losses reported, ${relists.length} relists`);
  if (losses === 0) {
    // No torn tail at any start: every resume must have worked, so the reference saw every seq once, in order.
    tt.same(relists, [], 'no watcher was told to relist');
    tt.same(checkReference(all), [], 'the reference saw every seq once, in order');
    tt.equal(all[0]?.seq, 1, 'from seq 1');
    // As far back as the ring reaches (1024 events).
    const since = Math.max(0, head - 1000);
    const replay = await probe.request('control.node_service_watch', { since_seq: since });
    tt.equal(replay.ok, true, `a replay from seq ${since} is served`);
    const replayed = await waitFor(
      () => {
        const events = probe.frames.filter(
          (f) => (f.payload as { watch_id?: string } | undefined)?.watch_id === (replay.payload as { watch_id: string }).watch_id,
        );
        return (
          events.some((f) => f.type === 'control.node_service_watch_synced') &&
          events.filter((f) => f.type === 'control.node_service_event').map((f) => emitted(f.payload as Record<string, unknown>))
        );
      },
      { what: `the replay from seq ${since}` },
    );
    tt.same(
      replayed,
      all.filter((e) => e.seq > since),
      'what the log holds after the kills is exactly what was streamed',
    );
  } else
    tt.ok(relists.length > 0, `the server reported ${losses} loss(es) at start-up (a kill inside a write): watchers resuming from before were told to relist`);
  tt.equal(all.at(-1)?.seq, head, 'the reference reached the head');
  for (const w of watchers) {
    const report = validateWatcher(w.sessions, all);
    tt.same(
      report.problems,
      [],
      `${w.name}: a valid history over ${w.sessions.length} sessions (${report.received.length} events received, ${report.expected.length} required)`,
    );
    failures.push(...report.problems.map((p) => `${w.name}: ${p}`));
  }
  tt.same(failures, [], 'nothing acknowledged lost, no upsert refused while up');
  tt.ok(acks > kills, `${acks} acknowledged upserts across ${kills} kills`);
  await probe.close();
  for (const w of watchers) w.close();
  for (const node of nodes) node.peer.socket.terminate();
});

/** What a fuzzed frame must get: an error frame with this code (and field, when named), a reply, or a close. */
type Expected = { code: string; field?: string } | { ok: true } | { close: number };
interface Case {
  /** The generator's category, for the counts. */
  kind: string;
  what: string;
  /** Text frame (string), binary (Buffer), or text whose bytes are not UTF-8 ({ invalidUtf8 }). */
  data: string | Buffer | { invalidUtf8: Buffer };
  /** The request id the answer carries (null when the frame had none that could be read). */
  id: string | null;
  expected: Expected;
  /** Who sends it. */
  as: 'admin' | 'user' | 'node' | 'throwaway';
}

/** One op's payload with a valid value per field, the fields' JSON types, and which are required. */
interface OpShape {
  type: string;
  base: Record<string, unknown>;
  types: Record<string, 'string' | 'integer' | 'array' | 'boolean'>;
  required: string[];
}

const OP_SHAPES: OpShape[] = [
  ...['control.node_get', 'control.node_service_get', 'control.node_lease_refresh', 'control.node_delete'].map((type) => ({
    type,
    base: { node_id: 'fz' },
    types: { node_id: 'string' as const },
    required: ['node_id'],
  })),
  ...['control.node_list', 'control.metrics', 'control.project_list'].map((type) => ({ type, base: {}, types: {}, required: [] })),
  {
    type: 'control.node_service_watch',
    base: { node_id: 'fz', replay_limit: 1, since_seq: 0 },
    types: { node_id: 'string', replay_limit: 'integer', since_seq: 'integer' },
    required: [],
  },
  { type: 'control.node_service_unwatch', base: { watch_id: 'w1' }, types: { watch_id: 'string' }, required: ['watch_id'] },
  ...['control.project_get', 'control.project_delete', 'control.project_token_rotate'].map((type) => ({
    type,
    base: { project_id: 'p' },
    types: { project_id: 'string' as const },
    required: ['project_id'],
  })),
  {
    type: 'control.session_attach',
    base: { project_id: 'p', project_token: 't' },
    types: { project_id: 'string', project_token: 'string' },
    required: ['project_id'],
  },
  {
    type: 'control.node_join',
    base: { join_token: 'x', node_id: 'fz', node_name: 'n' },
    types: { join_token: 'string', node_id: 'string', node_name: 'string' },
    required: ['join_token'],
  },
  {
    type: 'control.relay',
    base: { node_id: 'fz', request_id: 'r', op: 'stat', path: '/' },
    types: { node_id: 'string', request_id: 'string', path: 'string' },
    required: ['node_id', 'request_id', 'op', 'path'],
  },
  {
    type: 'control.node_service_upsert',
    base: { node_id: 'fz', services: [] },
    types: { node_id: 'string', services: 'array' },
    required: ['node_id', 'services'],
  },
  { type: 'control.version', base: { protocol: 'unified-v2' }, types: { protocol: 'string' }, required: ['protocol'] },
];
/** Ops a user may never call, whatever the payload (the role is checked before the payload). */
const NOT_FOR_USERS = [
  'control.node_service_upsert',
  'control.node_lease_refresh',
  'control.node_service_get',
  'control.node_delete',
  'control.node_join',
  'control.metrics',
  'control.project_list',
  'control.relay_reply',
];
const KNOWN_OPS = new Set([...OP_SHAPES.map((s) => s.type), ...NOT_FOR_USERS, 'control.relay_reply']);

/** A JSON value of another type than `type` (integers also get a fraction). */
function wrongValue(type: string): unknown {
  const others: unknown[] = [5, -1.5, true, null, {}, [], 'text', { nested: [1] }].filter((v) => {
    if (type === 'string') return typeof v !== 'string';
    if (type === 'integer') return !Number.isInteger(v);
    if (type === 'array') return !Array.isArray(v);
    return typeof v !== 'boolean';
  });
  return pick(others);
}

const letters = (n: number, alphabet = 'abcdefghijklmnopqrstuvwxyz_'): string => Array.from({ length: n }, () => pick([...alphabet])).join('');
const pointer = (key: string): string => `/${key.replace(/~/g, '~0').replace(/\//g, '~1')}`;
/** Odd but valid ids: quotes, backslashes, control characters, non-BMP characters, 1..128 characters. */
function oddId(): string {
  const parts = ['"', '\\', '\n', '\u0000', '\u2028', '😀', 'é', ' ', '}', '{', '/', 'a', '%00', '\t'];
  let id = '';
  const length = 1 + Math.floor(random() * 40);
  while ([...id].length < length) id += pick(parts);
  return id.slice(0, 128);
}

function fuzzCase(n: number): Case {
  const id = `f${n}`;
  const frame = (type: string, payload: unknown, extra: Record<string, unknown> = {}): string =>
    JSON.stringify({ channel: 'control', type, id, payload, ...extra });
  const valid = JSON.stringify({ channel: 'control', type: 'control.node_list', id, payload: {} });
  const r = random();
  if (r < 0.08) {
    const text = pick([
      valid.slice(0, Math.floor(random() * (valid.length - 1))),
      '{',
      '}',
      "{'channel':'control'}",
      'NaN',
      'undefined',
      '{"a":1,}',
      '[1,]',
      '\u0000',
      '01',
      '"unterminated',
      '{"channel":"control",,}',
    ]);
    return {
      kind: 'not JSON',
      what: `not JSON: ${JSON.stringify(text).slice(0, 40)}`,
      data: text,
      id: null,
      expected: { code: 'invalid_envelope' },
      as: 'admin',
    };
  }
  if (r < 0.12) {
    const text = pick(['5', '"x"', 'true', 'null', '[]', '[1,{}]', '-0.5e3']);
    return {
      kind: 'JSON not an object',
      what: `JSON but not an object: ${text}`,
      data: text,
      id: null,
      expected: { code: 'invalid_envelope', field: '/' },
      as: 'admin',
    };
  }
  if (r < 0.32) {
    // One envelope member wrong; the others right.
    const member = pick(['channel', 'type', 'id', 'payload', 'missing', 'extra']);
    const envelope: Record<string, unknown> = { channel: 'control', type: 'control.node_list', id, payload: {} };
    let field = `/${member}`;
    if (member === 'channel') envelope.channel = pick([5, null, 'data', 'Control', '', {}, ['control']]);
    else if (member === 'type')
      envelope.type = pick([
        5,
        null,
        '',
        'control.',
        'control.Node_list',
        'data.node_list',
        'control.node-list',
        `control.${'a'.repeat(65)}`,
        ['control.node_list'],
      ]);
    else if (member === 'id') envelope.id = pick([7, null, '', true, { id: 'x' }, 'x'.repeat(129), 'y'.repeat(100_000)]);
    else if (member === 'payload') envelope.payload = pick([[], 'x', 5, null, true]);
    else if (member === 'missing') {
      const gone = pick(['channel', 'type', 'id', 'payload']);
      delete envelope[gone];
      field = `/${gone}`;
    } else {
      const key = `zz${letters(1 + Math.floor(random() * 10))}`;
      envelope[key] = pick([1, 'x', null, {}]);
      field = pointer(key);
    }
    // Only an id the envelope allows (a string of 1 to 128 characters) comes back in the error.
    const echoed = typeof envelope.id === 'string' && envelope.id.length >= 1 && envelope.id.length <= 128 ? envelope.id : null;
    return {
      kind: 'envelope',
      what: `envelope ${member}: ${JSON.stringify(envelope).slice(0, 60)}`,
      data: JSON.stringify(envelope),
      id: echoed,
      expected: { code: 'invalid_envelope', field },
      as: 'admin',
    };
  }
  if (r < 0.38) {
    const odd = oddId();
    return {
      kind: 'odd id',
      what: `an odd but valid id ${JSON.stringify(odd)}`,
      data: JSON.stringify({ channel: 'control', type: 'control.node_list', id: odd, payload: {} }),
      id: odd,
      expected: { ok: true },
      as: 'admin',
    };
  }
  if (r < 0.45) {
    let type = `control.${letters(1 + Math.floor(random() * 64))}`;
    while (KNOWN_OPS.has(type)) type += 'x';
    return {
      kind: 'unknown op',
      what: `unknown op ${type.slice(0, 40)}`,
      data: frame(type, {}),
      id,
      expected: { code: 'unknown_op', field: '/type' },
      as: 'admin',
    };
  }
  if (r < 0.7) {
    // One field of an op's payload wrong (type, missing, unknown key); an admin may call every one of these.
    const shape = pick(OP_SHAPES);
    const payload: Record<string, unknown> = { ...shape.base };
    const fields = Object.keys(shape.types);
    const how = pick(['type', 'type', 'missing', 'unknown']);
    let field: string;
    if (how === 'type' && fields.length > 0) {
      const name = pick(fields);
      payload[name] = wrongValue(shape.types[name] as string);
      field = pointer(name);
    } else if (how === 'missing' && shape.required.length > 0) {
      const name = pick(shape.required);
      delete payload[name];
      field = pointer(name);
    } else {
      const key = `zz${letters(1 + Math.floor(random() * 10))}`;
      payload[key] = pick([1, 'x', null, [], { a: 1 }]);
      field = pointer(key);
    }
    return {
      kind: 'bad payload',
      what: `${shape.type} with ${field} wrong (${how})`,
      data: frame(shape.type, payload),
      id,
      expected: { code: 'invalid_payload', field },
      as: 'admin',
    };
  }
  if (r < 0.76) {
    const type = pick(NOT_FOR_USERS);
    return {
      kind: 'role',
      what: `a user calling ${type}`,
      data: frame(type, pick([{}, { node_id: 'fz' }, { x: [1] }])),
      id,
      expected: { code: 'forbidden' },
      as: 'user',
    };
  }
  if (r < 0.79) {
    const type = pick(['control.node_list', 'control.node_delete', 'control.metrics', 'control.project_list']);
    return {
      kind: 'role',
      what: `a node calling ${type}`,
      data: frame(type, type === 'control.node_delete' ? { node_id: 'fz' } : {}),
      id,
      expected: { code: 'forbidden' },
      as: 'node',
    };
  }
  if (r < 0.86) {
    const bytes = Buffer.from(pick([valid, '{}', '\u0000\u0001', 'x'.repeat(300)]));
    return { kind: 'binary', what: `a binary frame of ${bytes.length} bytes`, data: bytes, id: null, expected: { code: 'invalid_envelope' }, as: 'admin' };
  }
  if (r < 0.94) {
    // Deep nesting: named at the 64th level whatever the depth; below it an unknown key as usual.
    const depth = pick([10, 63, 64, 65, 1000, 50_000, 300_000]);
    const text = `{"channel":"control","type":"control.node_get","id":"${id}","payload":{"node_id":"fz","x":${'['.repeat(depth)}${']'.repeat(depth)}}}`;
    const field = depth > 63 ? `/x${'/0'.repeat(63)}` : '/x';
    return { kind: 'deep nesting', what: `a value nested ${depth} deep`, data: text, id, expected: { code: 'invalid_payload', field }, as: 'admin' };
  }
  if (r < 0.97) {
    // Not UTF-8: ws itself closes with 1007 (the frame never reaches the server's code).
    const bytes = Buffer.concat([
      Buffer.from('{"channel":"control","id":"'),
      Buffer.from(pick([[0xff], [0xc3, 0x28], [0xed, 0xa0, 0x80], [0xf8, 0x88, 0x80, 0x80, 0x80]])),
      Buffer.from('"}'),
    ]);
    return {
      kind: 'invalid UTF-8',
      what: 'a text frame that is not UTF-8',
      data: { invalidUtf8: bytes },
      id: null,
      expected: { close: 1007 },
      as: 'throwaway',
    };
  }
  if (r < 0.985) {
    return {
      kind: 'another protocol',
      what: 'control.version naming another protocol mid-session',
      data: frame('control.version', { protocol: `unified-v${1 + Math.floor(random() * 9)}x` }),
      id,
      expected: { close: 4002 },
      as: 'throwaway',
    };
  }
  return {
    kind: 'oversize',
    what: 'a user frame over 1 MiB',
    data: frame('control.node_list', { fill: 'x'.repeat((1 << 20) + Math.floor(random() * 1000)) }),
    id: null,
    expected: { close: 1009 },
    as: 'throwaway',
  };
}

/** How the frame fared against what it must get: a problem, or undefined. */
async function play(c: Case, peers: Record<'admin' | 'user' | 'node', RawPeer>, url: string, userToken: string): Promise<string | undefined> {
  const peer = c.as === 'throwaway' ? await session(url, { token: userToken }) : peers[c.as];
  if (typeof c.data === 'object' && !Buffer.isBuffer(c.data)) peer.socket.send(c.data.invalidUtf8, { binary: false });
  else peer.send(c.data);
  if ('close' in c.expected) {
    const closed = await settledWithin(peer.closed, 10_000, undefined);
    if (closed?.code !== c.expected.close) return `closed with ${String(closed?.code)}, not ${c.expected.close}`;
    return undefined;
  }
  const answer: Frame = await peer.next((f) => f.id === c.id, 10_000);
  if ('ok' in c.expected) return answer.ok === true ? undefined : `refused: ${JSON.stringify(answer.error)}`;
  if (answer.ok !== false || answer.error?.code !== c.expected.code) return `got ${JSON.stringify(answer.error ?? answer.type)}, not ${c.expected.code}`;
  if (c.expected.field !== undefined && answer.error.field !== c.expected.field)
    return `${c.expected.code} names ${String(answer.error.field)}, not ${c.expected.field}`;
  if (typeof answer.error.message !== 'string' || answer.error.message === '') return 'no message';
  return undefined;
}

await t.test('(b) fuzzed control frames: the right code naming the field, or the documented close; the server and everyone else unaffected', async (tt) => {
  const { url } = control;
  const admin = await session(url, { token: control.adminToken });
  const user = await session(url, { token: control.userToken });
  const node = await SimNode.join(url, control.dataDir, 'fz-node');
  const bystander = await session(url, { token: control.adminToken });
  const watcher = new ResumingWatcher('bystander-watch', control.adminToken, { node_id: 'fz-node' });
  await watcher.connect(url);
  await watcher.synced();
  let alive = true;
  void control.exited.then(() => (alive = false));
  const logBefore = (await readFile(control.logFile, 'utf8')).length;
  const peers = { admin, user, node: node.peer };
  const counts = new Map<string, number>();
  for (let n = 0; n < FRAMES; n++) {
    const c = fuzzCase(n);
    counts.set(c.kind, (counts.get(c.kind) ?? 0) + 1);
    let problem: string | undefined;
    try {
      problem = await play(c, peers, url, control.userToken);
    } catch (error) {
      problem = (error as Error).message.slice(0, 300);
    }
    framesFuzzed++;
    if (problem) failures.push(`frame ${n} (${c.what}): ${problem}`);
    if (!alive) {
      failures.push(`frame ${n} (${c.what}): the server exited`);
      break;
    }
    if (n % 50 === 49) {
      // Other connections are unaffected: the bystander is served, and a catalog change reaches the watcher.
      if ((await bystander.request('control.node_list')).ok !== true) failures.push(`after frame ${n}: the bystander was not served`);
      node.services.set('svc', String(n));
      await node.publish();
      const { head_seq: head } = await bystander.call<{ head_seq: number }>('control.node_service_watch', { replay_limit: 0 });
      await watcher.reach(head).catch((error: unknown) => failures.push(`after frame ${n}: ${(error as Error).message}`));
    }
  }
  tt.comment(`frames by kind: ${[...counts].map(([k, v]) => `${k} ${v}`).join(', ')}`);
  tt.ok(alive, 'the server never exited');
  tt.equal((await fetch(`${control.httpUrl}/livez`)).status, 200, '/livez');
  tt.equal((await fetch(`${control.httpUrl}/readyz`)).status, 200, '/readyz');
  for (const [name, peer] of Object.entries(peers)) tt.ok(peer.isOpen, `the ${name} fuzzing connection stayed open (only the documented cases close)`);
  tt.ok(bystander.isOpen && (await bystander.request('control.node_list')).ok, 'the bystander is served');
  tt.same(watcher.sessions.length, 1, 'the bystander watch was never cut');
  tt.same(validateWatcher(watcher.sessions, historyOf(watcher)).problems, [], 'and saw a valid history');
  tt.notMatch((await readFile(control.logFile, 'utf8')).slice(logBefore), /"level":(50|60)/, 'no error or fatal in the server log while fuzzed');
  tt.equal(framesFuzzed, FRAMES, `${FRAMES} frames fuzzed`);
  tt.same(failures, [], 'every frame got what it must');
  for (const peer of [admin, user, bystander]) await peer.close();
  node.peer.socket.terminate();
  watcher.close();
});
