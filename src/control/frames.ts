import { CHANNEL } from '../protocol/envelope.js';
import type { EventShape } from '../protocol/server-frames.js';
import type { CatalogEvent } from './catalog-event.js';

/**
 * Frames built from bytes serialized once (SPEC §6 shapes): an event's full payload goes out as
 * the upsert reply and to every watcher of the full shape, its delta payload to every watcher of
 * the delta shape, without another JSON.stringify or UTF-8 encoding; only a small head differs per
 * frame.
 */

/** An op's reply payload already serialized: the members of its object and the closing brace. */
export class SerializedPayload {
  constructor(readonly body: Buffer) {}
}

const CLOSE = Buffer.from('}');

/** Bodies from this size on are not copied into their reply: the reply goes out in fragments. */
const FRAGMENT_FROM_BYTES = 16 << 10;

/**
 * `{"channel":"control","type":…,"id":…,"ok":true,"payload":{` + body + `}`: one buffer, or for a
 * large body (a node's whole catalog) the three parts, sent as fragments of one message.
 */
export function replyFrame(type: string, id: string, payload: SerializedPayload): Buffer | Buffer[] {
  const head = Buffer.from(`{"channel":${JSON.stringify(CHANNEL)},"type":${JSON.stringify(type)},"id":${JSON.stringify(id)},"ok":true,"payload":{`);
  const parts = [head, payload.body, CLOSE];
  return payload.body.length >= FRAGMENT_FROM_BYTES ? parts : Buffer.concat(parts);
}

/** The head of a watch's event frames, up to the event's own members. */
export function watchEventHead(watchId: string, replay: boolean): Buffer {
  return Buffer.from(
    `{"channel":${JSON.stringify(CHANNEL)},"type":"control.node_service_event","ok":true,"payload":{"watch_id":${JSON.stringify(watchId)},"replay":${replay},`,
  );
}

/** Which shape a watch's events take (SPEC §6): the whole catalog, or `include: "delta"`. */
export type { EventShape };

/**
 * A text message framed for the wire once (RFC 6455 §5.2: unmasked, as a server sends, one
 * frame), so that one event reaches a hundred watchers as the same bytes written to each socket,
 * without ws building a header and making two writes per socket.
 */
export class WebSocketFrame {
  /** The header, then the payload. */
  readonly bytes: Buffer;
  readonly payloadOffset: number;

  constructor(payloadParts: readonly Buffer[]) {
    const length = payloadParts.reduce((sum, part) => sum + part.length, 0);
    const header = length < 126 ? 2 : length < 1 << 16 ? 4 : 10;
    const bytes = Buffer.allocUnsafe(header + length);
    bytes[0] = 0x81; // FIN, text
    if (header === 2) bytes[1] = length;
    else if (header === 4) {
      bytes[1] = 126;
      bytes.writeUInt16BE(length, 2);
    } else {
      bytes[1] = 127;
      bytes.writeBigUInt64BE(BigInt(length), 2);
    }
    let offset = header;
    for (const part of payloadParts) offset += part.copy(bytes, offset);
    this.bytes = bytes;
    this.payloadOffset = header;
  }

  /** The message itself (the JSON text). */
  get payload(): Buffer {
    return this.bytes.subarray(this.payloadOffset);
  }
}

/**
 * One watcher's frame of `event`: its head, then the bytes every watcher of that shape shares, or
 * `body`, the event as a session that may not see all of it sees it (sight.ts).
 */
export function eventFrame(watchHead: Buffer, event: CatalogEvent, shape: EventShape, body?: Buffer): WebSocketFrame {
  return new WebSocketFrame([watchHead, event.head, body ?? (shape === 'delta' ? event.deltaBody : event.body), CLOSE]);
}
