// docs/schemas/control-replies.schema.json describes what the server really sends: the frames and
// payloads built by src/control (events in both shapes, node records, joins) match it, and it is
// strict where the protocol is (an extra member, a missing one or a wrong type is named).
import t from 'tap';
import { CatalogEvent, fullBody, upsertReplyBody, type EventNode } from '../../../src/control/catalog-event.js';
import { serviceDelta, serviceEntry, type ServiceEntry } from '../../../src/control/delta.js';
import { eventFrame, replyFrame, SerializedPayload, watchEventHead } from '../../../src/control/frames.js';
import { joinPlan, offlinePlan, storedEntries, summaries, toPublic, upsertPlan } from '../../../src/control/node-record.js';
import { mergeProject, publicList, toPublic as publicProject, withNewToken } from '../../../src/control/projects.js';
import { applyDefaults } from '../../../src/manifest/index.js';
import { loadSchemas, SCHEMA_BASE } from '../../../src/protocol/schemas.js';
import type { ServiceDescriptor } from '../../../src/protocol/types.gen.js';

const schemas = await loadSchemas();
const REPLIES = `${SCHEMA_BASE}control-replies.schema.json#/definitions/`;
const problems = (definition: string, value: unknown): string[] => schemas.problems(REPLIES + definition, value, 'frame').map((p) => p.message);

const service = (id: string, version = '1'): ServiceDescriptor => applyDefaults({ service_id: id, kind: 'k', version }, 'n1');
/** The catalog's entries of `services`, as its stores build them. */
const stored = (services: ServiceDescriptor[]): ServiceEntry[] => storedEntries(services, (s, json) => serviceEntry(s, json, true));
const before = [service('a'), service('b')];
const after = [service('a', '2'), service('c')];
const meta = { node_id: 'n1', node_name: 'N', platform: { os: 'linux' }, labels: { rack: 'r1' } };
const node = (state: 'online' | 'offline'): EventNode => ({ ...meta, state, services: stored(after) });

t.test('pushed events in both shapes, replayed and live, match their schemas', async (t) => {
  for (const [kind, state] of [
    ['upsert', 'online'],
    ['offline', 'offline'],
  ] as const) {
    const event = new CatalogEvent(12, { kind, timestamp_ms: 7, node: node(state), delta: serviceDelta(before, after, 7) });
    for (const replay of [true, false]) {
      const full = JSON.parse(eventFrame(watchEventHead('w1', replay), event, 'full').payload.toString()) as { payload: unknown };
      const delta = JSON.parse(eventFrame(watchEventHead('w1', replay), event, 'delta').payload.toString()) as { payload: unknown };
      t.same(problems('push_frame', full), [], `${kind} frame envelope`);
      t.same(problems('catalog_event', full.payload), [], `${kind}: the full shape`);
      t.same(problems('catalog_delta_event', delta.payload), [], `${kind}: the delta shape`);
      t.not(problems('catalog_event', delta.payload).length, 0, 'one shape is not the other');
    }
    const logLine = JSON.parse(`{${event.head.toString()}${event.body.toString()}`) as unknown;
    t.same(problems('catalog_event', logLine), [], 'the event log line (no watch_id)');
  }
});

t.test('node records as node_get, node_list, join and upsert answer them match their schemas', async (t) => {
  const joined = joinPlan({ join_token: 'j', node_id: 'n1', node_name: 'N', platform: { os: 'linux' }, labels: { a: 'b' } }, undefined, 1000, 30_000);
  t.same(problems('join_reply', joined.reply), []);
  const incoming = after.map((s) => ({ service: s, json: Buffer.from(JSON.stringify(s)) }));
  const upserted = upsertPlan(joined.next, { node_id: 'n1' }, incoming, 2000, 30_000);
  const reply = replyFrame('control.node_service_upsert', '3', new SerializedPayload(fullBody({ ...upserted.next, services: stored(after) }, upserted.delta)));
  const replyJson = JSON.parse(Buffer.concat([reply].flat()).toString()) as { payload: unknown };
  t.same(problems('reply_frame', replyJson), []);
  t.same(problems('upsert_reply', replyJson.payload), []);
  const leanBody = upsertReplyBody('delta', undefined, { ...upserted.next, services: stored(after) }, upserted.delta);
  const lean = JSON.parse(`{${leanBody.toString()}`) as Record<string, unknown>;
  t.same(problems('upsert_reply', lean), [], 'the lean reply (include: "delta")');
  t.ok(Array.isArray(lean.changed_services) && lean.services === undefined, 'changed_services, no services');
  t.not(problems('upsert_reply', { ...lean, services: [] }).length, 0, 'not both shapes at once');
  t.same(problems('service_delta', upserted.delta), []);
  for (const record of [upserted.next, offlinePlan(upserted.next, 3000).next]) {
    t.same(problems('public_node', JSON.parse(JSON.stringify(toPublic(record)))), [], `${record.state}: published`);
    t.same(problems('stored_node', JSON.parse(JSON.stringify(toPublic(record, 'stored')))), [], `${record.state}: stored`);
    t.not(problems('stored_node', toPublic(record)).length, 0, 'the published view has no service_hashes');
  }
  t.same(problems('node_list_reply', { nodes: summaries([upserted.next]) }), []);
});

t.test('projects as project_get, project_upsert, project_list, project_token_rotate and project_delete answer them match their schemas', async (t) => {
  const bare = mergeProject({ project_id: 'p1' }, undefined);
  const full = mergeProject(
    {
      project_id: 'p2',
      name: 'Two',
      token: 'a-project-token-of-16+',
      mounts: [{ mount_path: '/p', node_id: 'n1', export_name: 'main' }, { node_id: 'n2' }],
      access_policy: { actions: { read: 'open', invoke: 'token' }, agents: { bot: { invoke: 'deny' } } },
    },
    undefined,
  );
  for (const project of [bare, full]) t.same(problems('public_project', publicProject(project)), [], `${project.project_id}: as get and upsert answer it`);
  t.same(problems('project_list_reply', { projects: publicList([full, bare]) }), []);
  t.same(problems('project_list_reply', { projects: [] }), [], 'no projects');
  const { token } = withNewToken(bare);
  t.same(problems('project_token_reply', { project_id: 'p1', token }), []);
  t.same(problems('project_delete_reply', { project_id: 'p1', deleted: true }), []);
  t.same(problems('public_project', { ...publicProject(full), token_sha256: 'x' }), ['frame: /token_sha256: unknown key'], 'never the hash');
});

t.test('strict: a wrong type, a missing member and an extra one are each named', async (t) => {
  const event = new CatalogEvent(12, { kind: 'upsert', timestamp_ms: 7, node: node('online'), delta: serviceDelta(before, after, 7) });
  const payload = (JSON.parse(eventFrame(watchEventHead('w1', false), event, 'delta').payload.toString()) as { payload: Record<string, unknown> }).payload;
  t.same(problems('catalog_delta_event', { ...payload, seq: '12' }), ['frame: /seq: must be integer']);
  const { node_name: _name, ...missing } = payload;
  t.same(problems('catalog_delta_event', missing), ['frame: /node_name: is required']);
  t.same(problems('catalog_delta_event', { ...payload, surprise: 1 }), ['frame: /surprise: unknown key']);
  const delta = payload.service_delta as { updated: Array<Record<string, unknown>> };
  const badHash = { ...payload, service_delta: { ...delta, updated: [{ ...delta.updated[0], previous_hash: 'x' }] } };
  t.same(problems('catalog_delta_event', badHash), ['frame: /service_delta/updated/0/previous_hash: must match pattern "^0x[0-9a-f]{16}$"']);
  t.same(problems('watch_marker', { watch_id: 'w1', head_seq: 3, extra: true }), ['frame: /extra: unknown key']);
  t.same(
    problems('error_frame', {
      channel: 'control',
      type: 'control.error',
      id: null,
      ok: false,
      error: { code: 'resync_required', message: 'm', watch_id: 'w1' },
    }),
    [],
  );
});
