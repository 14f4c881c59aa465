import { randomBytes, timingSafeEqual } from 'node:crypto';
import { createServer, type Server, type Socket } from 'node:net';
import type { DriverStream } from './remote-driver-process.js';

/** A connection that has not named its launch within this many bytes, or this long, is not the spawner's. */
const MAX_HELLO_BYTES = 256;
const HELLO_TIMEOUT_MS = 5000;

/** Where a connection that named its launch goes: that launch's stdin or stdout, with the bytes that came after the hello. */
export type OnDriverStream = (launchId: number, stream: DriverStream, socket: Socket, rest: Buffer) => void;

/**
 * The daemon's socket for persistent drivers' stdin and stdout (DriverSpawner): abstract (no file to
 * clean up after a kill -9), and a connection counts only once its first line names a launch with a
 * secret that only the spawners this process forked were told.
 */
export class DriverSocket {
  readonly path = `\0acheron-drivers-${process.pid}-${randomBytes(8).toString('hex')}`;
  #secret = randomBytes(16).toString('hex');
  #server: Server;

  private constructor(server: Server, onStream: OnDriverStream) {
    this.#server = server;
    server.on('connection', (socket) => this.#onConnection(socket, onStream));
  }

  static async listen(onStream: OnDriverStream): Promise<DriverSocket> {
    const server = createServer();
    const socket = new DriverSocket(server, onStream);
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(socket.path, resolve);
    });
    return socket;
  }

  /** What the driver's connections for `launchId` say first (before ` stdin` or ` stdout`). */
  hello(launchId: number): string {
    return `${this.#secret} ${launchId}`;
  }

  close(): void {
    this.#server.close();
  }

  /** A new connection is a launched driver's stdin or stdout once its first line names the launch with our secret, and which. */
  #onConnection(socket: Socket, onStream: OnDriverStream): void {
    // Anyone on the host can connect to an abstract socket: one that does not say who it is goes.
    socket.setTimeout(HELLO_TIMEOUT_MS, () => socket.destroy());
    let head = Buffer.alloc(0);
    const onData = (chunk: Buffer): void => {
      head = Buffer.concat([head, chunk]);
      const newline = head.indexOf(0x0a);
      if (newline < 0) {
        if (head.length > MAX_HELLO_BYTES) socket.destroy();
        return;
      }
      socket.off('data', onData);
      socket.setTimeout(0);
      const [secret = '', id, stream] = head.subarray(0, newline).toString('utf8').split(' ');
      if (!sameSecret(secret, this.#secret) || (stream !== 'stdin' && stream !== 'stdout')) {
        socket.destroy();
        return;
      }
      onStream(Number(id), stream, socket, head.subarray(newline + 1));
    };
    socket.on('error', () => undefined);
    socket.on('data', onData);
  }
}

function sameSecret(given: string, expected: string): boolean {
  const a = Buffer.from(given);
  const b = Buffer.from(expected);
  return a.length === b.length && timingSafeEqual(a, b);
}
