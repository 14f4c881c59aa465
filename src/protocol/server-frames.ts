import { problemAt, SCHEMA_BASE, type Problem, type Schemas } from './schemas.js';

/**
 * What a client checks of each frame the control server sends, against
 * docs/schemas/control-replies.schema.json: the envelope, then the payload of the replies and
 * pushes it reads. A frame that fails is an error naming the field (`<type> reply: /payload/seq:
 * must be integer`), before anything acts on it. A reply or push of a type not listed here is
 * checked as an envelope only (its reader takes it as opaque).
 */

const REPLIES = `${SCHEMA_BASE}control-replies.schema.json#/definitions/`;
const EMPTY = `${SCHEMA_BASE}control-protocol.schema.json#/definitions/empty`;

/** Which shape `control.node_service_event` takes on this client's watches (SPEC §6). */
export type EventShape = 'full' | 'delta';

/** The request a reply answers (its schema may depend on the request: node_get's view). */
export interface SentRequest {
  type: string;
  payload: Record<string, unknown>;
}

const REPLY_SCHEMAS: Record<string, (request: SentRequest) => string> = {
  'control.version': () => REPLIES + 'version_reply',
  'control.node_join': () => REPLIES + 'join_reply',
  'control.node_lease_refresh': () => REPLIES + 'lease_refresh_reply',
  'control.node_service_upsert': () => REPLIES + 'upsert_reply',
  'control.node_get': (request) => REPLIES + (request.payload.view === 'stored' ? 'stored_node' : 'public_node'),
  'control.node_list': () => REPLIES + 'node_list_reply',
  'control.node_service_watch': () => REPLIES + 'watch_ack',
  'control.session_attach': () => REPLIES + 'session_attach_reply',
  'control.project_get': () => REPLIES + 'public_project',
  'control.project_upsert': () => REPLIES + 'public_project',
  'control.project_list': () => REPLIES + 'project_list_reply',
  'control.project_token_rotate': () => REPLIES + 'project_token_reply',
  'control.project_delete': () => REPLIES + 'project_delete_reply',
  'control.relay': () => REPLIES + 'relay_outcome',
  'control.relay_peer': () => REPLIES + 'relay_outcome',
  'control.relay_ready': () => EMPTY,
  'control.relay_reply': () => EMPTY,
};

const PUSH_SCHEMAS: Record<string, string> = {
  'control.node_service_watch_synced': REPLIES + 'watch_marker',
  'control.node_service_watch_progress': REPLIES + 'watch_marker',
  'control.relay_request': REPLIES + 'relay_request',
  'control.relay_session_closed': REPLIES + 'relay_session_closed',
  'control.store_unavailable': REPLIES + 'store_unavailable',
};

const TYPE = /^control\.[a-z_]{1,64}$/;

export class ServerFrameCheck {
  readonly #schemas: Schemas;
  readonly #eventSchema: string;

  constructor(schemas: Schemas, options: { events: EventShape }) {
    this.#schemas = schemas;
    this.#eventSchema = REPLIES + (options.events === 'delta' ? 'catalog_delta_event' : 'catalog_event');
  }

  /** Every problem of one parsed frame; `request`: the request it answers (none for a push). [] when valid. */
  problems(frame: unknown, request?: SentRequest): Problem[] {
    const record = isRecord(frame) ? frame : undefined;
    const type = request?.type ?? (typeof record?.type === 'string' && TYPE.test(record.type) ? record.type : 'server frame');
    const source = request ? `${type} reply` : `${type} push`;
    const envelope = record?.ok === false ? 'error_frame' : record && 'id' in record ? 'reply_frame' : 'push_frame';
    const wrong = this.#schemas.problems(REPLIES + envelope, frame, source);
    if (wrong.length > 0 || envelope === 'error_frame' || !record) return wrong;
    const schema = request ? REPLY_SCHEMAS[request.type]?.(request) : type === 'control.node_service_event' ? this.#eventSchema : PUSH_SCHEMAS[type];
    return schema === undefined ? [] : this.#schemas.problems(schema, record.payload, source, '/payload');
  }
}

/** A frame that is not JSON at all. */
export function notJson(): Problem {
  return problemAt('server frame', '/', 'json', 'not JSON');
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
