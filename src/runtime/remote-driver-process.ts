import type { Socket } from 'node:net';
import type { DriverProcess } from './driver-process.js';

/** After the spawner says a driver exited, how long its connection and last output may still be on the way. */
const OUTPUT_DRAIN_MS = 200;

/**
 * The daemon's side of a persistent driver the spawner started: its stdin and stdout are a socket
 * to this process, its life is the spawner's business (start, signals, exit status over IPC).
 * Writes made before the socket arrives are queued.
 */
export class RemoteDriverProcess implements DriverProcess {
  readonly exited: Promise<string>;
  #socket: Socket | undefined;
  #queued: string[] = [];
  #listeners: Array<(chunk: Buffer) => void> = [];
  #terminate: (graceMs: number) => void;
  /** Set by gone(): how the process ended, reported once its output has drained. */
  #how: string | undefined;
  #drainTimer: NodeJS.Timeout | undefined;
  #over = false;
  #exit!: (how: string) => void;

  constructor(terminate: (graceMs: number) => void) {
    this.#terminate = terminate;
    this.exited = new Promise((resolve) => (this.#exit = resolve));
  }

  write(data: string): void {
    if (this.#socket) this.#socket.write(data);
    else if (this.#how === undefined) this.#queued.push(data);
  }

  onStdout(listener: (chunk: Buffer) => void): void {
    this.#listeners.push(listener);
  }

  terminate(graceMs: number): void {
    this.#terminate(graceMs);
  }

  /** The driver's connection, past its hello line; `rest` is what came with the hello. */
  attach(socket: Socket, rest: Buffer): void {
    if (this.#over || this.#socket) {
      socket.destroy();
      return;
    }
    this.#socket = socket;
    socket.on('error', () => undefined);
    socket.on('data', (chunk: Buffer) => this.#emit(chunk));
    if (rest.length > 0) this.#emit(rest);
    if (this.#how !== undefined) {
      // A driver that answered and exited at once: the spawner's report overtook its connection.
      this.#drain(socket);
      return;
    }
    for (const data of this.#queued) socket.write(data);
    this.#queued = [];
  }

  /**
   * The process is gone (or could not start, or the spawner died). Its last answers may still be
   * in the socket, or the socket itself still on its way: wait for its end, shortly (a grandchild
   * may keep it open).
   */
  gone(how: string): void {
    if (this.#how !== undefined) return;
    this.#how = how;
    this.#queued = [];
    if (this.#socket) this.#drain(this.#socket);
    else this.#drainTimer = setTimeout(() => this.#finish(), OUTPUT_DRAIN_MS);
  }

  #drain(socket: Socket): void {
    if (socket.readableEnded || socket.destroyed) {
      this.#finish();
      return;
    }
    clearTimeout(this.#drainTimer);
    this.#drainTimer = setTimeout(() => this.#finish(), OUTPUT_DRAIN_MS);
    socket.once('end', () => this.#finish());
    socket.once('close', () => this.#finish());
  }

  #finish(): void {
    if (this.#over) return;
    this.#over = true;
    clearTimeout(this.#drainTimer);
    this.#socket?.destroy();
    this.#exit(this.#how ?? 'gone');
  }

  #emit(chunk: Buffer): void {
    for (const listener of this.#listeners) listener(chunk);
  }
}
