import type { ChildProcess } from 'node:child_process';
import { EnvironmentCache } from './environment-cache.js';
import type { RemoteDriverProcess } from './remote-driver-process.js';
import type { DriverSpec, RunResult } from './run-result.js';
import { fromWireResult, toWireSpec, type SpawnerReply, type SpawnerRequest, type SpecFields } from './spawner-protocol.js';

/**
 * How long a spawner may take to answer a ping (`answers`): within the writer's WAIT_SLACK_MS
 * (wait-bound.ts), so the writer of a run it did not kill normally gets the run's end, not ETIMEDOUT...
 */
export const ANSWER_MARGIN_MS = 1000;
/** ...and one that has not said it is ready: just forked, it may still be loading (seconds on a loaded host). */
export const START_MARGIN_MS = 10_000;

/** A run sent to the spawner and not yet answered. */
export interface PendingRun {
  spec: DriverSpec;
  sentMs: number;
  /** The check that the spawner carries out its timeout kill (DriverSpawner). */
  watchdog?: NodeJS.Timeout;
  resolve(result: RunResult): void;
}

/**
 * One forked spawner process (DriverSpawner's side of it): the runs and persistent launches it was
 * given, and the mirror of its environment cache. A replacement gets a new link: nothing of the old
 * one's carries over.
 */
export class SpawnerLink {
  readonly child: ChildProcess;
  /** The mark its drivers carry (driver-owner.ts): its sweep finds only its own. */
  readonly owner: string;
  readonly pending = new Map<number, PendingRun>();
  readonly launches = new Map<number, RemoteDriverProcess>();
  /** Killed for not answering: its exit is no loss of the node's spawner. */
  isReplaced = false;
  /** Mirrors the spawner's bounded cache: an id it holds travels alone, any other with its environment. */
  #heldEnvs: EnvironmentCache<true>;
  #isReady = false;
  #ping: Promise<boolean> | undefined;
  #pong: (() => void) | undefined;

  constructor(child: ChildProcess, owner: string, environmentCacheSize: number) {
    this.child = child;
    this.owner = owner;
    this.#heldEnvs = new EnvironmentCache(environmentCacheSize);
    child.on('message', (reply: SpawnerReply) => {
      if (reply.type === 'pong') return this.#pong?.();
      if (reply.type === 'ready') return void (this.#isReady = true);
      if (reply.type === 'exited') {
        this.launches.get(reply.launchId)?.gone(reply.how);
        this.launches.delete(reply.launchId);
        return;
      }
      const pending = this.pending.get(reply.id);
      this.pending.delete(reply.id);
      clearTimeout(pending?.watchdog);
      pending?.resolve(fromWireResult(reply.result));
    });
  }

  send(request: SpawnerRequest): void {
    if (this.child.connected) this.child.send(request);
  }

  /** Called once per message sent, in order: the mirror of the spawner's cache stays exact. */
  specFields(spec: DriverSpec, envId: number): SpecFields {
    const held = this.#heldEnvs.get(envId) !== undefined;
    this.#heldEnvs.hold(envId, true);
    const { env, ...rest } = spec;
    return { spec: toWireSpec(rest), envId, ...(held ? {} : { env }) };
  }

  /** How long `answers` waits for the pong. */
  get answerMarginMs(): number {
    return this.#isReady ? ANSWER_MARGIN_MS : START_MARGIN_MS;
  }

  /** Whether the spawner answers a ping within `answerMarginMs`: a stopped or hung one does not. */
  answers(): Promise<boolean> {
    this.#ping ??= new Promise<boolean>((resolve) => {
      const timer = setTimeout(() => resolve(false), this.answerMarginMs);
      this.#pong = () => {
        clearTimeout(timer);
        resolve(true);
      };
      this.send({ type: 'ping' });
    }).finally(() => {
      this.#ping = undefined;
      this.#pong = undefined;
    });
    return this.#ping;
  }

  /** Ends every run as `end` says and every launch as gone: the spawner will not report them. */
  endAll(end: (pending: PendingRun) => RunResult, launchGone: string): void {
    for (const pending of this.pending.values()) {
      clearTimeout(pending.watchdog);
      pending.resolve(end(pending));
    }
    this.pending.clear();
    for (const launch of this.launches.values()) launch.gone(launchGone);
    this.launches.clear();
  }
}
