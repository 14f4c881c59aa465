import type { HostKind, ServiceDescriptor, WasmHost } from '../protocol/types.gen.js';
import type { LiveService } from '../runtime/live-service.js';

/** One service of this node: every one is in the catalog; executable ones also have a runtime. */
export interface NodeService {
  descriptor: ServiceDescriptor;
  /** Where it came from: a manifest path or `built-in ...`. */
  source: string;
  /** HOST.json's `host_kind`: how this node runs the service. */
  hostKind: HostKind;
  runtime?: LiveService;
  /** Where it lives in the node tree (`services/<id>`, `fs`), or null when catalog-only. */
  treePath: string | null;
  /** A wasm service's host (engine, module, limits, preopens), for HOST.json. */
  wasm?: WasmHost;
  /** When this version of the descriptor was loaded: mtime of the files rendered from it. */
  loadedMs: number;
}

/** The services of this node in load order; replaced whole on reload. */
export class ServiceRegistry {
  #services = new Map<string, NodeService>();
  #changedMs = Date.now();

  replace(services: readonly NodeService[]): void {
    this.#services = new Map(services.map((s) => [s.descriptor.service_id, s]));
    this.#changedMs = Date.now();
  }

  get changedMs(): number {
    return this.#changedMs;
  }

  list(): NodeService[] {
    return [...this.#services.values()];
  }

  get(serviceId: string): NodeService | undefined {
    return this.#services.get(serviceId);
  }

  /** Ids of the services with a live directory, in byte order (a stable `ls`). */
  executableIds(): string[] {
    return this.list()
      .filter((s) => s.runtime)
      .map((s) => s.descriptor.service_id)
      .sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)));
  }
}
