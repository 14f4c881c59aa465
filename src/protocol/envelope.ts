/**
 * src/protocol: what both sides of the wire share. Owns the frame envelope (here), the one ajv with
 * docs/schemas and the types generated from them, wire error codes, `ControlClient` and `--control-url`
 * failover, the service file table, SPEC §2 defaults for descriptors and the catalog event shapes.
 *
 * Must not import: node/, control/, world/, fuse/, runtime/, vfs/ or cli/ (both sides import it, so
 * it may depend on neither).
 */
import type { ServerErrorFrame, ServerPushFrame, ServerReplyFrame } from './types.gen.js';

/** Frames of the control protocol (SPEC §6). Replies may come out of order: match them by `id`. */
export const PROTOCOL = 'unified-v2';
export const CHANNEL = 'control';
/** Browsers cannot set headers: they send the token as a subprotocol `acheron.bearer.<base64url>`. */
export const BEARER_SUBPROTOCOL_PREFIX = 'acheron.bearer.';
export const USER_FRAME_MAX_BYTES = 1 << 20;
export const NODE_FRAME_MAX_BYTES = 16 << 20;
/**
 * Payload values nest at most this deep. JSON.parse takes any depth, but what serializes, hashes
 * and copies payloads recurses: a frame of a million `[` would exhaust the stack there.
 */
export const MAX_PAYLOAD_DEPTH = 64;

export interface RequestFrame {
  channel: 'control';
  type: string;
  id: string;
  payload: Record<string, unknown>;
}

// What the server sends is generated from docs/schemas/control-replies.schema.json (types.gen.ts).
export type ServerFrame = ServerReplyFrame | ServerErrorFrame | ServerPushFrame;

// The server builds payloads of many generated types (which have no index signature): each is an object, as the envelope says.
export const reply = (type: string, id: string, payload: unknown): ServerReplyFrame => ({
  channel: CHANNEL,
  type,
  id,
  ok: true,
  payload: payload as ServerReplyFrame['payload'],
});
export const errorFrame = (id: string | null, error: ServerErrorFrame['error']): ServerErrorFrame => ({
  channel: CHANNEL,
  type: 'control.error',
  id,
  ok: false,
  error,
});
export const push = (type: string, payload: object): ServerPushFrame => ({ channel: CHANNEL, type, ok: true, payload: payload as ServerPushFrame['payload'] });

/** A checked frame's payload as the type its schema gives it (`ServerFrameCheck` checked it against that schema). */
export function payloadOf<T>(frame: ServerReplyFrame | ServerPushFrame): T {
  return frame.payload as unknown as T;
}

export function bearerSubprotocol(token: string): string {
  return BEARER_SUBPROTOCOL_PREFIX + Buffer.from(token).toString('base64url');
}
