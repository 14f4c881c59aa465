// The fan-out baseline for bench/control.mjs, forked with an IPC channel: a plain `ws`
// WebSocketServer that broadcasts a real Acheron event frame (taken from a watcher) to every
// client, with a fresh send-time version in it each time, and nothing else: no auth, no catalog,
// no event log, no fdatasync.
//
// Commands: listen → {port}; template {name, frame}; broadcast {name, seconds, rate?, maxBufferedBytes}; close.
// Templates are kept by name (one per event shape).
// Without a rate it sends as fast as the clients take it (the next event only while every client
// has less than maxBufferedBytes unsent); with a rate, on that schedule.
import { WebSocketServer } from 'ws';
import { serveCommands } from './harness.mjs';

const nowUs = () => Number(process.hrtime.bigint() / 1000n);
let lastStampUs = 0;
function stampVersion() {
  lastStampUs = Math.max(nowUs(), lastStampUs + 1);
  return `t${lastStampUs}`;
}
const STAMP = /"version":"(t\d+)"/g;

let server;
/** Template name → the frame split around every occurrence of its event's version. */
const templates = new Map();
let parts = [];

/** The frame split around every occurrence of its event's version, to be joined with a new one. */
function setTemplate(name, frame) {
  const version = /"updated":\[\{"service_id":"[^"]*","version":"(t\d+)"/.exec(frame)?.[1];
  if (!version) throw new Error('the template frame has no stamped updated version');
  const split = frame.split(`"version":"${version}"`);
  if (split.length < 2) throw new Error('template split failed');
  templates.set(name, split);
  return { bytes: Buffer.byteLength(frame), occurrences: split.length - 1, stamps: (frame.match(STAMP) ?? []).length };
}

function broadcastOne() {
  // One serialization per event for every client, like the server's fan-out.
  const frame = parts.join(`"version":"${stampVersion()}"`);
  for (const client of server.clients) client.send(frame);
}

const immediate = () => new Promise((resolve) => setImmediate(resolve));
const maxBuffered = () => {
  let max = 0;
  for (const client of server.clients) max = Math.max(max, client.bufferedAmount);
  return max;
};

serveCommands({
  listen: () =>
    new Promise((resolve, reject) => {
      server = new WebSocketServer({ host: '127.0.0.1', port: 0, perMessageDeflate: false, clientTracking: true });
      server.once('error', reject);
      server.once('listening', () => resolve({ port: server.address().port }));
    }),
  template: async ({ name, frame }) => setTemplate(name, frame),
  async broadcast({ name, seconds, rate, maxBufferedBytes }) {
    parts = templates.get(name);
    if (!parts) throw new Error(`no template ${name}`);
    const start = nowUs();
    const end = start + seconds * 1e6;
    let sent = 0;
    let waits = 0;
    if (rate === undefined || rate === null) {
      while (nowUs() < end) {
        if (maxBuffered() < maxBufferedBytes) {
          broadcastOne();
          sent++;
        } else waits++;
        // Let the sockets write, as an event loop serving requests would between events.
        await immediate();
      }
    } else {
      const intervalUs = 1e6 / rate;
      const total = Math.floor(seconds * rate);
      while (nowUs() < end && sent < total) {
        const due = Math.min(Math.floor((nowUs() - start) / intervalUs) + 1, total);
        // A sender that falls behind the schedule stops at the end of the window all the same.
        while (sent < due && nowUs() < end) {
          broadcastOne();
          sent++;
        }
        await new Promise((resolve) => setTimeout(resolve, 1));
      }
    }
    return { sent, waits, startUs: start, endUs: end, clients: server.clients.size };
  },
  close: () =>
    new Promise((resolve) => {
      for (const client of server?.clients ?? []) client.terminate();
      if (!server) return resolve({});
      server.close(() => resolve({}));
    }),
});
