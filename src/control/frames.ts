import { CHANNEL } from '../protocol/envelope.js';
import type { CatalogEvent } from './event-log.js';

/**
 * Frames built from bytes serialized once (SPEC §6 shapes): an event's payload goes out as the
 * upsert reply and to every watcher without another JSON.stringify or UTF-8 encoding; only a
 * small head differs per frame.
 */

/** An op's reply payload already serialized: the members of its object and the closing brace. */
export class SerializedPayload {
  constructor(readonly body: Buffer) {}
}

const CLOSE = Buffer.from('}');

/** `{"channel":"control","type":…,"id":…,"ok":true,"payload":{` + body + `}`. */
export function replyFrame(type: string, id: string, payload: SerializedPayload): Buffer {
  const head = Buffer.from(`{"channel":${JSON.stringify(CHANNEL)},"type":${JSON.stringify(type)},"id":${JSON.stringify(id)},"ok":true,"payload":{`);
  return Buffer.concat([head, payload.body, CLOSE]);
}

/** The head of a watch's event frames, up to the event's own members. */
export function watchEventHead(watchId: string, replay: boolean): Buffer {
  return Buffer.from(`{"channel":${JSON.stringify(CHANNEL)},"type":"control.node_service_event","ok":true,"payload":{"watch_id":${JSON.stringify(watchId)},"replay":${replay},`);
}

/** One watcher's frame of `event`: its head, then the bytes every watcher shares. */
export function eventFrame(watchHead: Buffer, event: CatalogEvent): Buffer {
  return Buffer.concat([watchHead, event.head, event.body, CLOSE]);
}
