import type { Logger } from 'pino';
import type { ControlClient } from '../protocol/control-client.js';
import { ProtocolError } from '../protocol/errors.js';
import type { NodeLabels, NodePlatform, ServiceDescriptor } from '../protocol/types.gen.js';
import { catalogJson, describeUnfit, fitCatalog } from './catalog-fit.js';

/** How often the node compares its catalog with what it last published (changes coalesce within it). */
export const CATALOG_CHECK_MS = 1000;

const UPSERT_FAILED = 'catalog upsert failed';

export interface CatalogPublisherOptions {
  nodeId: string;
  node: { node_name: string; platform: NodePlatform; labels: NodeLabels };
  /** The catalog this node publishes now (descriptors with live state overlaid). */
  catalog: () => ServiceDescriptor[];
  log: Logger;
}

/**
 * The node's catalog upserts (SPEC §6): after every (re)connect and after every real change, never
 * otherwise; one at a time; a refusal said (logged, and `error`) and tried again at the next check.
 */
export class CatalogPublisher {
  /** The session's last catalog upsert refused (null: accepted). */
  #refused: string | null = null;
  /** The catalog did not fit the server's frame cap: what was left out of it (null: it fits). */
  #unfit: string | null = null;
  /** The ids left out for size, as last logged. */
  #unfitIds = '';
  #options: CatalogPublisherOptions;
  #published: string | undefined;
  #upserting: Promise<void> | undefined;
  /** The error code of the upsert refusals going on (logged when it changes), or undefined. */
  #upsertRefusedAs: string | undefined;
  /** Ask for the lean upsert reply, until a server of the earlier protocol refuses the `include` key. */
  #leanReplies = true;

  constructor(options: CatalogPublisherOptions) {
    this.#options = options;
  }

  /** What NODE.json says is wrong with the catalog's publishing: a refusal, services left out for size (null: none). */
  get error(): string | null {
    return [this.#refused, this.#unfit].filter((e) => e !== null).join('; ') || null;
  }

  /** A new session: it counts as a start (upsert once), with no refusal yet. */
  restart(): void {
    [this.#refused, this.#upsertRefusedAs, this.#published] = [null, undefined, undefined];
  }

  /**
   * `#publish`, a refusal said rather than thrown: logged when its kind (error code) changes, and in
   * `error` (the session's `lastError`, NODE.json) until an upsert is accepted; the next catalog
   * check tries again, since nothing was published. `endOnRefusal`: a refusal other than the store
   * being down (`unavailable`) is thrown instead, ending the session (its first upsert: too large,
   * invalid). `current`: the session of `client` is still this node's.
   */
  async publishOrSay(client: ControlClient, endOnRefusal: boolean, current: () => boolean): Promise<void> {
    const { log } = this.#options;
    try {
      await this.#publish(client);
      if (this.#upsertRefusedAs === undefined) return;
      [this.#refused, this.#upsertRefusedAs] = [null, undefined];
      log.info('catalog upsert accepted again');
    } catch (error) {
      if (!current() || !client.isOpen) return; // the session ends and says why
      const code = error instanceof ProtocolError ? error.code : 'error';
      if (endOnRefusal && code !== 'unavailable') throw error;
      this.#refused = `${UPSERT_FAILED}: ${(error as Error).message}`;
      if (code !== this.#upsertRefusedAs) log.warn({ err: (error as Error).message }, `${UPSERT_FAILED}; trying again every ${CATALOG_CHECK_MS} ms`);
      this.#upsertRefusedAs = code;
    }
  }

  /** Upserts when the catalog differs from what the server has from us; one upsert at a time. */
  #publish(client: ControlClient): Promise<void> {
    this.#upserting ??= (async () => {
      const catalog = this.#options.catalog();
      const { json, digest } = catalogJson(catalog);
      if (digest === this.#published) return;
      const head = { node_id: this.#options.nodeId, ...this.#options.node, include: 'delta' };
      const fit = fitCatalog(head, catalog, json);
      this.#sayUnfit(fit.left, fit.left.length > 0 ? describeUnfit(fit) : null);
      const upsert = { node_id: this.#options.nodeId, ...this.#options.node, services: fit.services };
      // The lean reply: the node has its catalog already and reads nothing of the stored one.
      try {
        await client.request('control.node_service_upsert', this.#leanReplies ? { ...upsert, include: 'delta' } : upsert);
      } catch (error) {
        if (!(this.#leanReplies && error instanceof ProtocolError && error.code === 'invalid_payload' && error.field === '/include')) throw error;
        this.#options.log.info('the control server does not know lean upsert replies (include: "delta"): asking for the whole catalog');
        this.#leanReplies = false;
        await client.request('control.node_service_upsert', upsert);
      }
      this.#published = digest;
    })().finally(() => (this.#upserting = undefined));
    return this.#upserting;
  }

  /** Logged when what is left out changes (an error: services are missing from the fleet's catalog), and kept for NODE.json. */
  #sayUnfit(left: ReadonlyArray<{ service_id: string }>, unfit: string | null): void {
    const ids = left.map((service) => service.service_id).join(',');
    if (ids !== this.#unfitIds) {
      if (unfit !== null) this.#options.log.error({ left_out: left }, unfit);
      else this.#options.log.info('catalog fits the frame cap again: every service is published');
    }
    [this.#unfit, this.#unfitIds] = [unfit, ids];
  }
}
