// Load generator for bench/control.mjs, forked with an IPC channel: simulated nodes, each one
// WebSocket to the control server speaking the node side of the protocol (SPEC §6): Bearer join
// token, control.version, control.node_join, then control.node_service_upsert of its 20 services.
//
// Commands: register {url | urls, tokens, prefix, concurrency} (with `urls`, node i registers with
// urls[i mod n]: servers of one store); upserts {seconds, inflight, rate?,
// recordAcks?}; close. Every changed version is `t<µs>`, the send time on CLOCK_MONOTONIC
// (process.hrtime), which every process on the machine shares: a watcher computes the event
// latency from the version alone.
import WebSocket from 'ws';
import { nodeCatalog } from './descriptors.mjs';
import { serveCommands } from './harness.mjs';

const nowUs = () => Number(process.hrtime.bigint() / 1000n);
let lastStampUs = 0;
/** The send time as a version string, unique within this process. */
function stampVersion() {
  lastStampUs = Math.max(nowUs(), lastStampUs + 1);
  return `t${lastStampUs}`;
}

// Replies are matched by id without parsing the (large) upsert reply: the id and ok come first.
const HEAD = /^\{"channel":"control","type":"[^"]*","id":"([^"]*)","ok":(true|false)/;

class SimNode {
  constructor(url, joinToken, nodeId) {
    this.url = url;
    this.joinToken = joinToken;
    this.nodeId = nodeId;
    this.pending = new Map();
    this.nextId = 1;
    this.busy = false;
    this.services = nodeCatalog(nodeId);
    this.serviceJson = this.services.map((s) => JSON.stringify(s));
    this.changes = 0;
  }

  connect() {
    return new Promise((resolve, reject) => {
      const socket = new WebSocket(this.url, {
        headers: { authorization: `Bearer ${this.joinToken}` },
        perMessageDeflate: false,
        skipUTF8Validation: true,
        handshakeTimeout: 60_000,
      });
      this.socket = socket;
      socket.once('open', () => resolve());
      socket.once('unexpected-response', (_request, response) => {
        response.resume();
        reject(new Error(`upgrade refused: HTTP ${response.statusCode}`));
      });
      socket.once('error', reject);
      socket.on('message', (data) => this.onMessage(data));
      socket.on('close', (code) => {
        for (const waiter of this.pending.values()) waiter.reject(new Error(`connection closed (${code})`));
        this.pending.clear();
      });
    });
  }

  onMessage(data) {
    const head = HEAD.exec(data.toString('latin1', 0, Math.min(data.length, 200)));
    const waiter = head && this.pending.get(head[1]);
    if (!waiter) return;
    this.pending.delete(head[1]);
    if (head[2] === 'true') waiter.resolve(data);
    else {
      const error = JSON.parse(data.toString('utf8')).error ?? {};
      waiter.reject(Object.assign(new Error(`${error.code}: ${error.message}`), { code: error.code }));
    }
  }

  /** Sends a frame (`payloadJson` already serialized) and resolves with the raw reply. */
  send(type, payloadJson) {
    const id = `r${this.nextId++}`;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      this.socket.send(`{"channel":"control","type":"${type}","id":"${id}","payload":${payloadJson}}`);
    });
  }

  /** As Acheron's node sends it: the whole catalog, and the lean reply (`include: "delta"`). */
  upsertFrame() {
    return `{"node_id":"${this.nodeId}","services":[${this.serviceJson.join(',')}],"include":"delta"}`;
  }

  /** One real change: the next service (in turn) gets a new version. */
  changeOne() {
    const index = this.changes++ % this.services.length;
    const version = stampVersion();
    this.services[index] = { ...this.services[index], version };
    this.serviceJson[index] = JSON.stringify(this.services[index]);
    return version;
  }
}

let nodes = [];
/** A failed registration is tried again after a pause, up to this many attempts in all. */
const REGISTER_ATTEMPTS = 3;
const RETRY_AFTER_MS = 1000;

async function register({ url, urls = [url], tokens, prefix, concurrency }) {
  const candidates = tokens.map((token, i) => new SimNode(urls[i % urls.length], token, `${prefix}-${String(i).padStart(4, '0')}`));
  const perNode = [];
  const errors = {};
  const retries = {};
  let next = 0;
  const started = nowUs();
  const worker = async () => {
    while (next < candidates.length) {
      const index = next++;
      const node = candidates[index];
      const t0 = nowUs();
      for (let attempt = 1; ; attempt++) {
        try {
          const phases = await registerOne(node, index);
          const done = nowUs();
          perNode.push({ ...phases, totalUs: done - t0, doneUs: done - started, attempts: attempt });
          nodes.push(node);
          break;
        } catch (error) {
          node.socket?.terminate();
          const key = error.code ?? error.message.slice(0, 120);
          if (attempt >= REGISTER_ATTEMPTS) {
            errors[key] = (errors[key] ?? 0) + 1;
            break;
          }
          // A join that failed spent no token: the node tries again, as a real one reconnects.
          retries[key] = (retries[key] ?? 0) + 1;
          await new Promise((resolve) => setTimeout(resolve, RETRY_AFTER_MS));
        }
      }
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  return { registered: nodes.length, attempted: candidates.length, seconds: (nowUs() - started) / 1e6, perNode, errors, retries };
}

/** Connect, version, join, first upsert; the time of each phase of this attempt. */
async function registerOne(node, index) {
  const t0 = nowUs();
  await node.connect();
  const t1 = nowUs();
  await node.send('control.version', '{"protocol":"unified-v2"}');
  await node.send(
    'control.node_join',
    JSON.stringify({
      join_token: node.joinToken,
      node_id: node.nodeId,
      node_name: node.nodeId,
      platform: { os: 'linux', arch: 'x64', runtime_kind: 'node' },
      labels: { zone: `zone-${index % 4}`, role: 'bench' },
    }),
  );
  const t2 = nowUs();
  await node.send('control.node_service_upsert', node.upsertFrame());
  const t3 = nowUs();
  return { connectUs: t1 - t0, joinUs: t2 - t1, upsertUs: t3 - t2 };
}

/**
 * Upserts for `seconds`, each changing one service of one node, nodes in turn, at most one
 * upsert in flight per node (as a node does). `rate` absent: closed loop with `inflight` upserts
 * outstanding; `rate` given: sends on that schedule, and a send that finds every node busy (or
 * `inflight` outstanding) is skipped and counted: the offered load does not queue up here.
 */
async function upserts({ seconds, inflight, rate, recordAcks = false }) {
  if (nodes.length === 0) throw new Error('no registered nodes');
  const latencies = [];
  const acks = [];
  const errors = {};
  let cursor = 0;
  let outstanding = 0;
  let sent = 0;
  let acked = 0;
  let ackedInWindow = 0;
  let skipped = 0;
  const start = nowUs();
  const end = start + seconds * 1e6;
  let wake;
  const one = () => {
    let node;
    for (let tries = 0; tries < nodes.length; tries++) {
      const candidate = nodes[cursor++ % nodes.length];
      if (!candidate.busy) {
        node = candidate;
        break;
      }
    }
    if (!node) return false;
    node.busy = true;
    outstanding++;
    sent++;
    const version = node.changeOne();
    const sentUs = Number(version.slice(1));
    node
      .send('control.node_service_upsert', node.upsertFrame())
      .then(
        () => {
          const ackUs = nowUs();
          acked++;
          if (ackUs <= end) ackedInWindow++;
          latencies.push(ackUs - sentUs);
          if (recordAcks) acks.push([sentUs, ackUs]);
        },
        (error) => {
          const key = error.code ?? error.message.slice(0, 120);
          errors[key] = (errors[key] ?? 0) + 1;
        },
      )
      .finally(() => {
        node.busy = false;
        outstanding--;
        wake?.();
      });
    return true;
  };
  const waitForSlot = () => new Promise((resolve) => (wake = resolve));
  if (rate === undefined || rate === null) {
    while (nowUs() < end) {
      while (outstanding < inflight && nowUs() < end) if (!one()) break;
      await Promise.race([waitForSlot(), new Promise((resolve) => setTimeout(resolve, 5))]);
    }
  } else {
    const intervalUs = 1e6 / rate;
    let due = 0;
    while (nowUs() < end) {
      const target = Math.min(Math.floor((nowUs() - start) / intervalUs) + 1, Math.floor(seconds * rate));
      while (due < target) {
        if (outstanding >= inflight || !one()) skipped++;
        due++;
      }
      await new Promise((resolve) => setTimeout(resolve, 1));
    }
  }
  const drainDeadline = Date.now() + 60_000;
  while (outstanding > 0 && Date.now() < drainDeadline) await new Promise((resolve) => setTimeout(resolve, 10));
  return {
    seconds,
    inflight,
    rate: rate ?? null,
    sent,
    acked,
    ackedInWindow,
    perSecond: ackedInWindow / seconds,
    skipped,
    latencies,
    acks,
    errors,
    startUs: start,
    endUs: end,
    unfinished: outstanding,
  };
}

serveCommands({
  register,
  upserts,
  close: async () => {
    for (const node of nodes) node.socket.close(1000);
    nodes = [];
    return {};
  },
});
