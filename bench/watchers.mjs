// Watchers for bench/control.mjs, forked with an IPC channel: N WebSocket clients in one process
// that count the event frames they receive and how late they are.
//
// Commands: connect {url, count, token?, include?} (with a token: an Acheron admin session per
// client with control.node_service_watch replay_limit 0, and `include` ("delta": lean events);
// without: plain clients of bench/broadcast-server.mjs); pause and resume (Acheron sessions: every
// client unwatches, or watches again, so only one group of watchers loads the server at a time);
// start; count; stop {fromUs, toUs}; sample; close.
//
// Every frame carries the send time of its event as the version `t<µs>` of the one updated
// service in its service_delta (CLOCK_MONOTONIC, shared by all processes on the machine), near the
// end of the frame: it is found there without parsing the frame, so a watcher costs what receiving
// costs, and the plain broadcast baseline (which sends the same frames) costs the same to receive.
import WebSocket from 'ws';
import { serveCommands } from './harness.mjs';
import { summarize } from './stats.mjs';

const nowUs = () => Number(process.hrtime.bigint() / 1000n);
const EVENT_PREFIX = Buffer.from('{"channel":"control","type":"control.node_service_event"');
const STAMP = /"updated":\[\{"service_id":"[^"]*","version":"t(\d+)"/;
const TAIL_BYTES = 1024;

let clients = [];
let measuring = false;
let sentUs = new Float64Array(1 << 20);
let recvUs = new Float64Array(1 << 20);
let received = 0;
let bytes = 0;
let unstamped = 0;
let resyncs = 0;
let lastEvent;
const frameSizes = [];

function record(data) {
  const tail = data.toString('latin1', Math.max(0, data.length - TAIL_BYTES));
  const stamp = STAMP.exec(tail);
  if (!stamp) {
    unstamped++;
    return;
  }
  lastEvent = data;
  if (!measuring) return;
  if (received === sentUs.length) {
    const grow = (array) => {
      const bigger = new Float64Array(array.length * 2);
      bigger.set(array);
      return bigger;
    };
    sentUs = grow(sentUs);
    recvUs = grow(recvUs);
  }
  sentUs[received] = Number(stamp[1]);
  recvUs[received] = nowUs();
  received++;
  bytes += data.length;
  if (frameSizes.length < 1000) frameSizes.push(data.length);
}

/** Acheron sessions: how each watches, unwatches and says it is synced. */
const sessions = [];

/** One client; with a token it is an Acheron session that watches every node from now on. */
function client(url, token, include) {
  return new Promise((resolve, reject) => {
    const socket = new WebSocket(url, {
      headers: token ? { authorization: `Bearer ${token}` } : {},
      perMessageDeflate: false,
      skipUTF8Validation: true,
      handshakeTimeout: 60_000,
      maxPayload: 64 << 20,
    });
    let nextId = 1;
    let watchId;
    /** @type {(value?: unknown) => void} */
    let synced = () => undefined;
    /** Watches from now on, unless a watch of this session is on already (one watch each: no event twice). */
    const watch = () => {
      if (watchId !== undefined) return Promise.resolve();
      const ready = new Promise((done) => (synced = done));
      socket.send(
        JSON.stringify({
          channel: 'control',
          type: 'control.node_service_watch',
          id: `w${nextId++}`,
          payload: { replay_limit: 0, ...(include ? { include } : {}) },
        }),
      );
      return ready;
    };
    const unwatch = () => {
      if (watchId !== undefined)
        socket.send(JSON.stringify({ channel: 'control', type: 'control.node_service_unwatch', id: `u${nextId++}`, payload: { watch_id: watchId } }));
      watchId = undefined;
    };
    socket.on('message', (/** @type {Buffer} */ data) => {
      if (data.length > EVENT_PREFIX.length && data.compare(EVENT_PREFIX, 0, EVENT_PREFIX.length, 0, EVENT_PREFIX.length) === 0) {
        record(data);
        return;
      }
      const frame = JSON.parse(data.toString('utf8'));
      // Connected once its first watch has synced (watch() makes a new promise each time: wait on this one).
      if (frame.type === 'control.version') void watch().then(resolve);
      else if (frame.type === 'control.node_service_watch' && frame.ok) watchId = frame.payload.watch_id;
      else if (frame.type === 'control.node_service_watch_synced') synced();
      else if (frame.type === 'control.error' && frame.error?.code === 'resync_required') {
        // Too slow for the server: its watch ended. Watch again (from now), and count it.
        resyncs++;
        watchId = undefined;
        watch();
      } else if (frame.type === 'control.error') reject(new Error(`watcher: ${frame.error?.code}: ${frame.error?.message}`));
    });
    socket.once('open', () => {
      clients.push(socket);
      if (!token) return resolve();
      sessions.push({ watch, unwatch });
      socket.send(JSON.stringify({ channel: 'control', type: 'control.version', id: 'v', payload: { protocol: 'unified-v2' } }));
    });
    socket.once('unexpected-response', (_request, response) => {
      response.resume();
      reject(new Error(`upgrade refused: HTTP ${response.statusCode}`));
    });
    socket.once('error', reject);
  });
}

serveCommands({
  async connect({ url, count, token, include }) {
    const started = nowUs();
    await Promise.all(Array.from({ length: count }, () => client(url, token, include)));
    return { connected: clients.length, seconds: (nowUs() - started) / 1e6 };
  },
  async pause() {
    for (const session of sessions) session.unwatch();
    return {};
  },
  async resume() {
    await Promise.all(sessions.map((session) => session.watch()));
    return {};
  },
  async start() {
    received = 0;
    bytes = 0;
    unstamped = 0;
    resyncs = 0;
    frameSizes.length = 0;
    measuring = true;
    return {};
  },
  /**
   * Deliveries received within [fromUs, toUs] (the sending window) give the rate; every delivery
   * of an event sent within the window counts for latency; per event, when its last copy arrived.
   */
  async stop({ fromUs, toUs }) {
    measuring = false;
    let inWindow = 0;
    const latencies = [];
    const lastByEvent = new Map();
    for (let i = 0; i < received; i++) {
      const recv = recvUs[i];
      const sent = sentUs[i];
      if (recv >= fromUs && recv <= toUs) inWindow++;
      if (sent < fromUs || sent > toUs) continue;
      latencies.push(recv - sent);
      const seen = lastByEvent.get(sent);
      if (seen === undefined) lastByEvent.set(sent, [recv, 1]);
      else {
        seen[0] = Math.max(seen[0], recv);
        seen[1]++;
      }
    }
    return {
      clients: clients.length,
      received,
      bytes,
      inWindow,
      perSecond: inWindow / ((toUs - fromUs) / 1e6),
      unstamped,
      resyncs,
      latency: summarize(latencies),
      deliveries: latencies.length,
      events: [...lastByEvent].map(([sent, [last, copies]]) => [sent, last, copies]),
      frameBytes: summarize(frameSizes),
    };
  },
  async count() {
    return { received };
  },
  async sample() {
    if (!lastEvent) throw new Error('no event received yet');
    return { frame: lastEvent.toString('utf8') };
  },
  async close() {
    for (const socket of clients) socket.terminate();
    clients = [];
    sessions.length = 0;
    return {};
  },
});
