import { Counter, Gauge, Registry } from 'prom-client';
import type { Catalog } from './catalog.js';

/** The server's Prometheus metrics (SPEC §7), on a registry of its own (no global state). */
export class ControlMetrics {
  readonly registry = new Registry();
  readonly upserts: Counter<'changed'>;
  readonly errors: Counter<'code'>;
  readonly connections: Gauge<'role'>;
  readonly frames: Counter<'role'>;

  constructor(catalog: Catalog) {
    const registers = [this.registry];
    new Gauge({
      name: 'acheron_nodes', help: 'Nodes in the catalog by state', labelNames: ['state'], registers,
      collect() {
        const { nodes } = catalog.count();
        for (const [state, n] of Object.entries(nodes)) this.set({ state }, n);
      },
    });
    new Gauge({
      name: 'acheron_services', help: 'Services in the catalog by the state of their node', labelNames: ['state'], registers,
      collect() {
        const { services } = catalog.count();
        for (const [state, n] of Object.entries(services)) this.set({ state }, n);
      },
    });
    this.upserts = new Counter({ name: 'acheron_upserts_total', help: 'control.node_service_upsert requests served', labelNames: ['changed'], registers });
    this.errors = new Counter({ name: 'acheron_errors_total', help: 'Error replies by wire code', labelNames: ['code'], registers });
    this.connections = new Gauge({ name: 'acheron_connections', help: 'Open WebSocket connections by role', labelNames: ['role'], registers });
    this.frames = new Counter({ name: 'acheron_frames_total', help: 'Request frames received by role', labelNames: ['role'], registers });
  }

  /** The same numbers as /metrics, as JSON (control.metrics and /metrics.json). */
  async json(): Promise<Record<string, unknown>> {
    const metrics = await this.registry.getMetricsAsJSON();
    return Object.fromEntries(metrics.map((m) => [m.name, m.values.map((v) => ({ labels: v.labels, value: v.value }))]));
  }
}
