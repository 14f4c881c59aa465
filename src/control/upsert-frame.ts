import { MAX_PAYLOAD_DEPTH } from '../protocol/envelope.js';
import { jsonBoundProblem } from '../protocol/json-bounds.js';
import type { ServiceDescriptor, ServiceDescriptorInput } from '../protocol/types.gen.js';
import type { ServiceEntry } from './delta.js';

/**
 * A node re-sends its whole catalog with every upsert (SPEC §6), usually with one descriptor
 * changed. Parsing, re-serializing and validating all of them dominated the server's CPU, so an
 * upsert frame is read in two parts: the frame with `payload.services` emptied (parsed and
 * validated as usual), and each descriptor's JSON text. A text equal to a descriptor this server
 * stored and validated is that descriptor; only the others are parsed (and, with their defaults
 * applied, validated by the op).
 */
export type IncomingService =
  /** The text (as received) is a stored entry's JSON: nothing to parse, default, validate or hash. */
  | { known: ServiceEntry }
  /** A parsed descriptor as sent: not validated yet. */
  | { value: unknown };

/** An upserted descriptor ready to store: a stored entry, or a new one (defaults applied, validated) and its JSON. */
export type ResolvedService = { known: ServiceEntry } | { service: ServiceDescriptor; json: Buffer };

/** Frames below this size are parsed whole: the split would not pay. */
const SPLIT_MIN_BYTES = 8192;
/**
 * The payload schema's `maxItems` for services: a larger catalog takes the plain path, where the
 * schema refuses it (the split leaves the schema an empty array to check).
 */
export const SPLIT_MAX_SERVICES = 10_000;
const UPSERT_TYPE = 'control.node_service_upsert';

const incoming = new WeakMap<object, IncomingService[]>();

/**
 * Parses a request frame (UTF-8, as received). An upsert is returned with `payload.services` empty
 * and its descriptors kept aside for `incomingServices`; `stored(nodeId)` gives the node's stored
 * descriptors, whose JSON bytes are matched in place, so the frame never becomes one string. Any
 * doubt (not an upsert, a descriptor that does not parse, an odd shape) falls back to parsing the
 * whole text, so errors are as ever.
 */
export function parseRequest(frame: Buffer, stored: (nodeId: string) => readonly ServiceEntry[] | undefined): unknown {
  const split = frame.length >= SPLIT_MIN_BYTES ? splitServices(frame, stored) : undefined;
  if (split && split.services.length <= SPLIT_MAX_SERVICES) {
    try {
      const parsed = JSON.parse(split.rest) as { type?: unknown; payload?: { node_id?: unknown; services?: unknown } };
      const payload = parsed.payload;
      // The parsed node id (JSON.parse keeps the last of repeated keys) must be the one whose stored
      // descriptors were matched: a second node_id after the array would pass another node's as known.
      if (
        parsed.type === UPSERT_TYPE &&
        payload !== undefined &&
        payload.node_id === split.matchedFor &&
        Array.isArray(payload.services) &&
        payload.services.length === 0
      ) {
        incoming.set(
          payload,
          split.services.map((part) => {
            if (typeof part !== 'string') return { known: part };
            const value = JSON.parse(part) as unknown;
            // Too deep for what follows (payload → services → descriptor), or a number overflowed: the whole frame, checked as such, says where.
            if (jsonBoundProblem(value, MAX_PAYLOAD_DEPTH - 2) !== undefined) throw new RangeError('a descriptor out of bounds');
            return { value };
          }),
        );
        return parsed;
      }
    } catch {
      // Not JSON after all: the whole text gives the error message.
    }
  }
  return JSON.parse(frame.toString('utf8'));
}

/** The upsert's descriptors: as split by parseRequest, or (plain path) the payload's. */
export function incomingServices(payload: { services: ServiceDescriptorInput[] }): IncomingService[] {
  return incoming.get(payload) ?? payload.services.map((value) => ({ value }));
}

const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const COMMA = 0x2c;
const CLOSE_BRACKET = 0x5d;

/** Whitespace JSON allows between tokens. */
function isSpace(c: number | undefined): boolean {
  return c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09;
}

/**
 * `payload.services` of a frame taken apart: each element's JSON text, or the stored entry whose
 * JSON it is (its bytes compared in place, by position: no scan, no copy), and the frame with the
 * array replaced by `[]`. Undefined unless the frame has exactly one `payload` object with exactly
 * one `services` array. Only a scan of brackets and strings: the parts are parsed afterwards. It
 * reads bytes: in UTF-8 every byte of a multi-byte character is above 0x7f, so the ASCII a JSON
 * structure is made of is found exactly where it would be in the text.
 */
export function splitServices(
  frame: Buffer,
  stored: (nodeId: string) => readonly ServiceEntry[] | undefined,
): { rest: string; matchedFor: string | undefined; services: Array<string | ServiceEntry> } | undefined {
  let depth = 0;
  let lastString = '';
  let key1 = '';
  let key2 = '';
  let afterColon = false;
  let nodeId: string | undefined;
  /** The node id when the array began: the node whose stored descriptors were matched. */
  let matchedFor: string | undefined;
  let inPayload = false;
  let payloads = 0;
  let arrays = 0;
  let start = -1;
  let end = -1;
  let elementStart = -1;
  let candidates: readonly ServiceEntry[] | undefined;
  let known: ServiceEntry | undefined;
  const services: Array<string | ServiceEntry> = [];
  /** At the start of an element: is it the stored descriptor at its position, followed by `,` or `]`? */
  const match = (from: number): number => {
    let i = from;
    while (isSpace(frame[i])) i++;
    const candidate = candidates?.[services.length];
    if (
      !candidate?.validated ||
      i + candidate.json.length > frame.length ||
      frame.compare(candidate.json, 0, candidate.json.length, i, i + candidate.json.length) !== 0
    )
      return from;
    let next = i + candidate.json.length;
    while (isSpace(frame[next])) next++;
    const c = frame[next];
    if (c !== COMMA && c !== CLOSE_BRACKET) return from;
    known = candidate;
    return next;
  };
  const element = (to: number): string | ServiceEntry => {
    const part = known ?? frame.toString('utf8', elementStart, to).trim();
    known = undefined;
    return part;
  };
  for (let i = 0; i < frame.length; i++) {
    const c = frame[i] as number;
    if (c === QUOTE) {
      let j = i + 1;
      for (;;) {
        j = frame.indexOf(QUOTE, j);
        if (j < 0) return undefined;
        let backslashes = 0;
        while (frame[j - 1 - backslashes] === BACKSLASH) backslashes++;
        if (backslashes % 2 === 0) break;
        j++;
      }
      if (depth <= 2) {
        lastString = frame.toString('utf8', i + 1, j);
        if (depth === 2 && inPayload && afterColon && key2 === 'node_id') nodeId = lastString;
      }
      afterColon = false;
      i = j;
      continue;
    }
    if (isSpace(c)) continue;
    afterColon = c === 0x3a;
    switch (c) {
      case 0x3a: // :
        if (depth === 1) key1 = lastString;
        else if (depth === 2) key2 = lastString;
        break;
      case 0x7b: // {
        if (depth === 1 && key1 === 'payload') {
          inPayload = true;
          payloads++;
          key2 = '';
        }
        depth++;
        break;
      case 0x5b: // [
        depth++;
        if (depth === 3 && inPayload && key2 === 'services') {
          arrays++;
          start = i;
          elementStart = i + 1;
          // Escaped ids never match a stored node: those frames are only scanned.
          matchedFor = nodeId;
          candidates = nodeId === undefined || nodeId.includes('\\') ? undefined : stored(nodeId);
          i = match(i + 1) - 1;
        }
        break;
      case 0x7d: // }
      case CLOSE_BRACKET:
        depth--;
        if (depth < 0) return undefined;
        if (depth === 2 && start >= 0 && end < 0) {
          if (c !== CLOSE_BRACKET) return undefined;
          end = i;
          const last = element(i);
          if (last !== '' || services.length > 0) services.push(last);
        } else if (depth === 1 && c === 0x7d) inPayload = false;
        break;
      case COMMA:
        if (depth === 3 && start >= 0 && end < 0) {
          services.push(element(i));
          elementStart = i + 1;
          i = match(i + 1) - 1;
        }
        break;
    }
  }
  if (depth !== 0 || payloads !== 1 || arrays !== 1 || end < 0) return undefined;
  return { rest: `${frame.toString('utf8', 0, start)}[]${frame.toString('utf8', end + 1)}`, matchedFor, services };
}
