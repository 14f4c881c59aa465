import type { Socket } from 'node:net';
import type { DriverProcess } from './driver-process.js';

/** After the spawner says a driver exited, how long its last output may still be on the way. */
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
    if (this.#how !== undefined || this.#socket) {
      socket.destroy();
      return;
    }
    this.#socket = socket;
    socket.on('error', () => undefined);
    socket.on('data', (chunk: Buffer) => this.#emit(chunk));
    if (rest.length > 0) this.#emit(rest);
    for (const data of this.#queued) socket.write(data);
    this.#queued = [];
  }

  /**
   * The process is gone (or could not start, or the spawner died). Its last answers may still be
   * in the socket: wait for the socket's end, shortly (a grandchild may keep it open). Without a
   * socket there is nothing to wait for: requests are written only once it is here, so the driver
   * never had one to answer.
   */
  gone(how: string): void {
    if (this.#how !== undefined) return;
    this.#how = how;
    this.#queued = [];
    const socket = this.#socket;
    if (!socket || socket.readableEnded || socket.destroyed) {
      socket?.destroy();
      this.#exit(how);
      return;
    }
    const done = (): void => {
      clearTimeout(timer);
      socket.destroy();
      this.#exit(how);
    };
    const timer = setTimeout(done, OUTPUT_DRAIN_MS);
    socket.once('end', done);
    socket.once('close', done);
  }

  #emit(chunk: Buffer): void {
    for (const listener of this.#listeners) listener(chunk);
  }
}
