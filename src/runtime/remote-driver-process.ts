import type { Socket } from 'node:net';
import type { DriverProcess } from './driver-process.js';

/** After the spawner says a driver exited, how long its last output may still be on the way. */
const OUTPUT_DRAIN_MS = 200;

/** Which of the driver's standard streams a connection is. */
export type DriverStream = 'stdin' | 'stdout';

/**
 * The daemon's side of a persistent driver the spawner started: its stdin and its stdout are two
 * connections to this process (two, so that EOF on stdout says the driver closed it), its life is
 * the spawner's business (start, signals, exit status over IPC). Writes made before the stdin
 * connection arrives are queued.
 */
export class RemoteDriverProcess implements DriverProcess {
  readonly exited: Promise<string>;
  readonly stdoutEnded: Promise<void>;
  #stdin: Socket | undefined;
  #stdout: Socket | undefined;
  #queued: string[] = [];
  #listeners: Array<(chunk: Buffer) => void> = [];
  #terminate: (graceMs: number) => void;
  /** Set by gone(): how the process ended, reported once its output has drained. */
  #how: string | undefined;
  #exit!: (how: string) => void;
  #endStdout!: () => void;

  constructor(terminate: (graceMs: number) => void) {
    this.#terminate = terminate;
    this.exited = new Promise((resolve) => (this.#exit = resolve));
    this.stdoutEnded = new Promise((resolve) => (this.#endStdout = resolve));
  }

  write(data: string): void {
    if (this.#stdin) this.#stdin.write(data);
    else if (this.#how === undefined) this.#queued.push(data);
  }

  onStdout(listener: (chunk: Buffer) => void): void {
    this.#listeners.push(listener);
  }

  terminate(graceMs: number): void {
    this.#terminate(graceMs);
  }

  /** One of the driver's connections, past its hello line; `rest` is what came with the hello. */
  attach(stream: DriverStream, socket: Socket, rest: Buffer): void {
    if (this.#how !== undefined || (stream === 'stdin' ? this.#stdin : this.#stdout)) {
      socket.destroy();
      return;
    }
    socket.on('error', () => undefined);
    if (stream === 'stdout') {
      this.#stdout = socket;
      socket.on('data', (chunk: Buffer) => this.#emit(chunk));
      socket.once('end', () => this.#endStdout());
      if (rest.length > 0) this.#emit(rest);
      return;
    }
    this.#stdin = socket;
    // Nothing is read from a driver's stdin: what it may write there is dropped, not left to pile up.
    socket.resume();
    for (const data of this.#queued) socket.write(data);
    this.#queued = [];
  }

  /**
   * The process is gone (or could not start, or the spawner died). Its last answers may still be
   * in the stdout connection: wait for its end, shortly (a grandchild may keep it open). Without
   * one there is nothing to wait for: requests are written only once stdin is here, and the spawner
   * starts the driver only once both connections are made, so the driver never had one to answer.
   */
  gone(how: string): void {
    if (this.#how !== undefined) return;
    this.#how = how;
    this.#queued = [];
    const socket = this.#stdout;
    let timer: NodeJS.Timeout | undefined;
    const done = (): void => {
      clearTimeout(timer);
      socket?.destroy();
      this.#stdin?.destroy();
      this.#exit(how);
    };
    if (!socket || socket.readableEnded || socket.destroyed) {
      done();
      return;
    }
    timer = setTimeout(done, OUTPUT_DRAIN_MS);
    socket.once('end', done);
    socket.once('close', done);
  }

  #emit(chunk: Buffer): void {
    for (const listener of this.#listeners) listener(chunk);
  }
}
