import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { CatalogStore, EventStream } from './catalog-store.js';
import { ROLES } from './principal.js';

export interface WatchMetrics {
  subscribers: Gauge;
  fanoutEvents: Counter;
  fanoutAttempts: Counter;
  fanoutSent: Counter;
  fanoutDropped: Counter;
  ended: Counter<'reason'>;
  replayRequests: Counter;
  replayEvents: Counter;
  replayBytes: Counter;
}

export interface RelayMetrics {
  operations: Counter<'op' | 'outcome'>;
  latency: Histogram<'op' | 'outcome'>;
}

/** The server's Prometheus metrics (SPEC §7), on a registry of its own (no global state). */
export class ControlMetrics {
  readonly registry = new Registry();
  readonly upserts: Counter<'changed'>;
  /** Error replies, and upgrades refused before a session (`ControlServer`), by wire code. */
  readonly errors: Counter<'code'>;
  readonly connections: Gauge<'role'>;
  readonly frames: Counter<'role'>;
  /** Connections the server ended itself: a peer not reading what it is sent, or one silent past two pings. */
  readonly dropped: Counter<'reason'>;
  /** The watch fan-out's (WatchHub). */
  readonly watch: WatchMetrics;
  /** The WorldFS relay's (RelayHub). */
  readonly relay: RelayMetrics;

  /**
   * `serverId` labels every metric: several servers on one store are told apart. `storeProblem`: the
   * /readyz store check (why the store cannot serve, or undefined), read at each scrape.
   */
  constructor(catalog: CatalogStore, events: EventStream, serverId: string, storeProblem: () => Promise<string | undefined>) {
    const registers = [this.registry];
    this.registry.setDefaultLabels({ server_id: serverId });
    // process_* and nodejs_* (CPU, memory, file descriptors, event loop lag, GC), read at each scrape.
    collectDefaultMetrics({ register: this.registry });
    // Gauges named like counters (promtool refuses them); the same numbers by type stay: nodejs_active_handles and so on.
    for (const name of ['nodejs_active_handles_total', 'nodejs_active_requests_total', 'nodejs_active_resources_total']) this.registry.removeSingleMetric(name);
    new Gauge({
      name: 'acheron_nodes',
      help: 'Nodes in the catalog by state',
      labelNames: ['state'],
      registers,
      collect() {
        const { nodes } = catalog.count();
        for (const [state, n] of Object.entries(nodes)) this.set({ state }, n);
      },
    });
    new Gauge({
      name: 'acheron_services',
      help: 'Services in the catalog by their own state (offline for every service of an offline node)',
      labelNames: ['state'],
      registers,
      collect() {
        // States come and go with the catalog (online, degraded, offline, whatever a manifest names): none is kept stale.
        this.reset();
        for (const state of ['online', 'offline']) this.set({ state }, 0);
        for (const [state, n] of catalog.count().services) this.set({ state }, n);
      },
    });
    new Gauge({
      name: 'acheron_store_ready',
      help: '1 while the store can serve (the store check of /readyz), else 0',
      registers,
      async collect() {
        this.set((await storeProblem()) === undefined ? 1 : 0);
      },
    });
    this.upserts = new Counter({ name: 'acheron_upserts_total', help: 'control.node_service_upsert requests served', labelNames: ['changed'], registers });
    this.errors = new Counter({
      name: 'acheron_errors_total',
      help: 'Error replies and refused connections (HTTP 401, 403, 503 at the upgrade) by wire code',
      labelNames: ['code'],
      registers,
    });
    this.connections = new Gauge({ name: 'acheron_connections', help: 'Open WebSocket connections by role', labelNames: ['role'], registers });
    this.frames = new Counter({ name: 'acheron_frames_total', help: 'Request frames received by role', labelNames: ['role'], registers });
    this.dropped = new Counter({
      name: 'acheron_connections_dropped_total',
      help: 'Connections the server dropped: not_reading (replies unsent past the bound), missed_pongs, lease_lapsed (a node offline by its lease whose tunnel still looked open)',
      labelNames: ['reason'],
      registers,
    });
    for (const reason of ['not_reading', 'missed_pongs', 'lease_lapsed']) this.dropped.inc({ reason }, 0);
    // A series absent until its first connection would leave an alert on it silent, or a sum across servers short.
    for (const role of ROLES) {
      this.connections.set({ role }, 0);
      this.frames.inc({ role }, 0);
    }
    const counter = (name: string, help: string): Counter => new Counter({ name, help, registers });
    this.watch = {
      subscribers: new Gauge({ name: 'acheron_watch_subscribers', help: 'Live catalog watches', registers }),
      fanoutEvents: counter('acheron_watch_fanout_events_total', 'Events handed to the watch fan-out'),
      fanoutAttempts: counter('acheron_watch_fanout_attempts_total', 'Deliveries attempted (event x matching watch)'),
      fanoutSent: counter('acheron_watch_fanout_sent_total', 'Deliveries sent'),
      fanoutDropped: counter(
        'acheron_watch_fanout_dropped_total',
        'Deliveries refused because the watcher was too slow (its watch ended with resync_required)',
      ),
      ended: new Counter({ name: 'acheron_watch_ended_total', help: 'Watches ended by the server', labelNames: ['reason'], registers }),
      replayRequests: counter('acheron_watch_replay_requests_total', 'Watches started (each replays)'),
      replayEvents: counter('acheron_watch_replay_events_total', 'Events replayed'),
      replayBytes: counter('acheron_watch_replay_bytes_total', 'Bytes of replayed event frames'),
    };
    // Not head_seq: on etcd that follows every revision under the prefix (lease refreshes too), with no event.
    new Gauge({
      name: 'acheron_event_seq',
      help: 'The seq of the last event this server delivered (moves only with an event)',
      registers,
      collect() {
        this.set(events.lastEventSeq);
      },
    });
    const window = (name: string, help: string, pick: (w: ReturnType<EventStream['window']>) => number | null) =>
      new Gauge({
        name,
        help,
        registers,
        collect() {
          this.set(pick(events.window()) ?? 0);
        },
      });
    window('acheron_watch_retained_events', 'Events in the replay ring', (w) => w.events);
    window('acheron_watch_retained_capacity', 'Capacity of the replay ring', (w) => w.capacity);
    window('acheron_watch_retained_oldest_seq', 'Oldest seq in the replay ring (0 when empty)', (w) => w.oldest_seq);
    window('acheron_watch_retained_newest_seq', 'Newest seq in the replay ring (0 when empty)', (w) => w.newest_seq);
    const seconds = (ms: number | null): number | null => (ms === null ? null : ms / 1000);
    window('acheron_watch_retained_oldest_timestamp_seconds', 'Time of the oldest retained event (Unix seconds; 0 when none)', (w) => seconds(w.oldest_ms));
    window('acheron_watch_retained_newest_timestamp_seconds', 'Time of the newest retained event (Unix seconds; 0 when none)', (w) => seconds(w.newest_ms));
    window('acheron_watch_retained_window_seconds', 'Time span of the replay ring', (w) => w.window_ms / 1000);
    this.relay = {
      operations: new Counter({
        name: 'acheron_relay_operations_total',
        help: 'WorldFS operations relayed to nodes, by op and outcome (ok or the errno)',
        labelNames: ['op', 'outcome'],
        registers,
      }),
      // An invoke waits for its driver: buckets up to a minute. Every relay counted above is observed, the timed out ones too.
      latency: new Histogram({
        name: 'acheron_relay_latency_seconds',
        help: 'Time from forwarding a relayed operation to its outcome (the answer, ETIMEDOUT at its bound, EHOSTUNREACH), by op and outcome',
        labelNames: ['op', 'outcome'],
        buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60],
        registers,
      }),
    };
  }

  /** The same numbers as /metrics, as JSON (control.metrics and /metrics.json). */
  async json(): Promise<Record<string, unknown>> {
    const metrics = await this.registry.getMetricsAsJSON();
    return Object.fromEntries(metrics.map((m) => [m.name, m.values.map((v) => ({ labels: v.labels, value: v.value }))]));
  }
}
