// An etcd-style history checker for catalog watches (SPEC §6 Events): given what one watcher
// received over all its sessions (reconnects resume with since_seq) and every event the server
// emitted (seen by an unfiltered admin watcher from seq 0), it lists each way the watcher's view
// breaks the contract. An empty list means the view is right.
import { isDeepStrictEqual } from 'node:util';

/** A frame as received (parsed JSON): the watch reply, pushes, or errors. */
export interface WatchFrame {
  type?: string;
  id?: string | null;
  ok?: boolean;
  payload?: unknown;
  error?: { code: string; message: string; watch_id?: string };
}

/** An event as the reference watcher saw it, without the per-watch fields. */
export interface EmittedEvent {
  seq: number;
  kind: string;
  node_id: string;
  [key: string]: unknown;
}

export interface WatchRequest {
  node_id?: string;
  replay_limit?: number;
  since_seq?: number;
  include?: 'delta';
}

/**
 * One watch: the request, then the frames of that watch in arrival order. The first frame is the
 * reply (ack) to the request; the others are the pushes carrying its watch_id. A session whose
 * ack never came (the server died first) is left out by the caller.
 */
export interface WatchSession {
  request: WatchRequest;
  frames: WatchFrame[];
  /** The watcher closed it (to reconnect) or lost it (a server crash): its stream may stop anywhere. */
  cut?: boolean;
}

export interface HistoryReport {
  problems: string[];
  /** Every seq the watcher received (replays included), in arrival order. */
  received: number[];
  /** The seqs the coverage check required. */
  expected: number[];
}

export interface ValidateOptions {
  /** The oldest seq the server still retained when a session without since_seq replayed (default 1). */
  retainedFrom?: number;
}

interface Ack {
  watch_id: string;
  replay_limit: number;
  replayed: number;
  head_seq: number;
  node_id?: string;
}

const EVENT = 'control.node_service_event';
const SYNCED = 'control.node_service_watch_synced';
const PROGRESS = 'control.node_service_watch_progress';

/** The event as emitted: the frame payload without the fields that differ per watch. */
export function emitted(payload: Record<string, unknown>): EmittedEvent {
  const { watch_id: _watch, replay: _replay, ...event } = payload;
  return event as EmittedEvent;
}

/**
 * Checks the reference stream itself: every seq once, in order, and (`contiguous`, the file store)
 * every seq from the first to the last. etcd's seqs are revisions: increasing, not contiguous.
 */
export function checkReference(events: readonly EmittedEvent[], options: { contiguous?: boolean } = {}): string[] {
  const contiguous = options.contiguous ?? true;
  const problems: string[] = [];
  events.forEach((event, index) => {
    const previous = (events[index - 1] as EmittedEvent | undefined)?.seq;
    if (previous !== undefined && (contiguous ? event.seq !== previous + 1 : event.seq <= previous)) {
      problems.push(`reference: seq ${event.seq} follows ${previous} (${contiguous ? 'a gap, ' : ''}a duplicate or a reordering)`);
    }
  });
  return problems;
}

/**
 * Validates one watcher. `all` holds every event the server emitted, in seq order. A session
 * with since_seq continues the coverage of the sessions before it; one without it (a new watch,
 * or a re-list after resync_required) checks its replay exactly and starts the coverage again at
 * its head_seq. Coverage ends at the furthest position the watcher learned (last event, synced or
 * progress head_seq) and must then hold exactly the matching events, each once and in order.
 */
export function validateWatcher(sessions: readonly WatchSession[], all: readonly EmittedEvent[], options: ValidateOptions = {}): HistoryReport {
  const problems: string[] = [];
  const received: number[] = [];
  const expected: number[] = [];
  const bySeq = new Map(all.map((event) => [event.seq, event]));
  const retainedFrom = options.retainedFrom ?? 1;

  let segment: { start: number; end: number; filter: string | undefined; seqs: number[] } | undefined;
  const closeSegment = (): void => {
    if (!segment) return;
    const { start, end, filter, seqs } = segment;
    const want = all.filter((e) => e.seq > start && e.seq <= end && (filter === undefined || e.node_id === filter)).map((e) => e.seq);
    expected.push(...want);
    const got = seqs.filter((s) => s > start && s <= end);
    const missing = want.filter((s) => !got.includes(s));
    const extra = got.filter((s) => !want.includes(s));
    if (missing.length) problems.push(`coverage (${start}, ${end}]: missing seqs ${missing.join(',')}`);
    if (extra.length) problems.push(`coverage (${start}, ${end}]: unexpected seqs ${extra.join(',')}`);
    segment = undefined;
  };

  let lastSeq = -Infinity;
  sessions.forEach((session, index) => {
    const label = `session ${index + 1}`;
    const [first, ...rest] = session.frames;
    const ackPayload = first?.payload as Ack | undefined;
    if (!first || first.ok !== true || first.type !== 'control.node_service_watch' || typeof ackPayload?.watch_id !== 'string') {
      problems.push(`${label}: the first frame is not the watch reply: ${JSON.stringify(first).slice(0, 300)}`);
      return;
    }
    const ack = ackPayload;
    const filter = session.request.node_id;
    const since = session.request.since_seq;
    if (ack.node_id !== filter) problems.push(`${label}: ack node_id ${String(ack.node_id)}, asked ${String(filter)}`);
    // The coverage this session extends: the running one when it resumes, a new one (opened at
    // the synced marker) when it watches afresh.
    let current: NonNullable<typeof segment> | undefined;
    if (since !== undefined) {
      if (segment && since !== segment.end) problems.push(`${label}: resumed from since_seq ${since}, but the watcher had learned position ${segment.end}`);
      segment ??= { start: since, end: since, filter, seqs: [] };
      current = segment;
    } else closeSegment();

    const replays: number[] = [];
    let synced = false;
    let ended = false;
    for (const frame of rest) {
      const payload = (frame.payload ?? {}) as Record<string, unknown>;
      const watchId = frame.ok === false ? frame.error?.watch_id : payload.watch_id;
      if (watchId !== ack.watch_id) problems.push(`${label}: frame ${frame.type} carries watch_id ${String(watchId)}, not ${ack.watch_id}`);
      if (ended) problems.push(`${label}: frame ${frame.type} after the watch ended`);
      if (frame.ok === false) {
        if (frame.error?.code !== 'resync_required') problems.push(`${label}: error ${frame.error?.code} on the watch`);
        ended = true;
        continue;
      }
      if (frame.type === SYNCED) {
        if (synced) problems.push(`${label}: a second synced marker`);
        if (payload.head_seq !== ack.head_seq) problems.push(`${label}: synced head_seq ${String(payload.head_seq)} differs from the ack's ${ack.head_seq}`);
        synced = true;
        if (current) current.end = Math.max(current.end, ack.head_seq);
        else current = segment = { start: ack.head_seq, end: ack.head_seq, filter, seqs: [] };
        continue;
      }
      if (frame.type === PROGRESS) {
        if (!synced || !current) problems.push(`${label}: progress before synced`);
        else if (typeof payload.head_seq === 'number') current.end = Math.max(current.end, payload.head_seq);
        continue;
      }
      if (frame.type !== EVENT) {
        problems.push(`${label}: unexpected frame ${frame.type}`);
        continue;
      }
      const event = emitted(payload);
      const isReplay = payload.replay === true;
      if (isReplay === synced)
        problems.push(`${label}: seq ${event.seq} has replay:${String(payload.replay)} ${synced ? 'after' : 'before'} the synced marker`);
      if (isReplay && event.seq > ack.head_seq) problems.push(`${label}: replayed seq ${event.seq} is beyond head_seq ${ack.head_seq}`);
      if (!isReplay && event.seq <= ack.head_seq) problems.push(`${label}: live seq ${event.seq} is not beyond head_seq ${ack.head_seq}`);
      if (event.seq <= lastSeq) problems.push(`${label}: seq ${event.seq} after ${lastSeq} (duplicate or out of order)`);
      lastSeq = Math.max(lastSeq, event.seq);
      if (filter !== undefined && event.node_id !== filter)
        problems.push(`${label}: seq ${event.seq} is for node ${event.node_id}, outside the filter ${filter}`);
      const reference = bySeq.get(event.seq);
      if (!reference) problems.push(`${label}: seq ${event.seq} was never emitted (reference has no such seq)`);
      else if (!isDeepStrictEqual(reference, event))
        problems.push(
          `${label}: seq ${event.seq} differs from the emitted event: ${JSON.stringify(event).slice(0, 200)} vs ${JSON.stringify(reference).slice(0, 200)}`,
        );
      received.push(event.seq);
      if (isReplay) replays.push(event.seq);
      // A fresh watch's replay is checked on its own below; everything else is coverage.
      if (current) {
        current.seqs.push(event.seq);
        current.end = Math.max(current.end, event.seq);
      }
    }
    // A fresh watch cut off before its synced marker: the watcher knows only its last replay.
    if (since === undefined && !synced && replays.length > 0) {
      const last = replays[replays.length - 1] as number;
      segment = { start: last, end: last, filter, seqs: [] };
    }
    if (!synced && !ended && !session.cut && rest.length > 0) problems.push(`${label}: frames came but never the synced marker`);
    if (synced && replays.length !== ack.replayed) problems.push(`${label}: ack says replayed ${ack.replayed}, ${replays.length} replay frames came`);
    if (session.request.since_seq === undefined && synced) {
      const matching = all.filter((e) => e.seq >= retainedFrom && e.seq <= ack.head_seq && (filter === undefined || e.node_id === filter));
      const want = ack.replay_limit === 0 ? [] : matching.slice(-ack.replay_limit).map((e) => e.seq);
      if (!isDeepStrictEqual(want, replays))
        problems.push(`${label}: replayed seqs [${replays.join(',')}], expected the last ${ack.replay_limit} matching: [${want.join(',')}]`);
    }
  });
  closeSegment();
  return { problems, received, expected };
}
