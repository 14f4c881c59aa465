// A tiny control server for client tests: a real ws server on 127.0.0.1 that answers each request
// with what the test scripts for its type (the version handshake built in), and lets the test push
// any frame, malformed ones included, to the connected client.
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import { WebSocketServer, type WebSocket } from 'ws';
import { PROTOCOL } from '../../src/protocol/envelope.js';

export type Answer = (payload: Record<string, unknown>) => unknown;

/** What `raw` returns to close the connection instead of replying (1009: the frame was too large). */
export class CloseWith {
  constructor(
    readonly code: number,
    readonly reason = '',
  ) {}
}

export interface ScriptedControl {
  url: string;
  /** Requests received, by type, in order. */
  requests: Array<{ type: string; payload: Record<string, unknown> }>;
  /** Sends a frame (an object is serialized; a string goes as it is) to every connected client. */
  send(frame: unknown): void;
  /** Drops every connected client; the server stays up for them to reconnect. */
  cut(): void;
  close(): Promise<void>;
}

/**
 * `answers[type]` gives a reply's payload; the reply frame is `{channel, type, id, ok: true, payload}`
 * unless `raw` builds it (or returns undefined to leave it to `answers`, or a CloseWith to close the connection).
 */
export async function scriptedControl(
  answers: Record<string, Answer>,
  raw: Record<string, (id: string, payload: Record<string, unknown>) => unknown> = {},
): Promise<ScriptedControl> {
  const server = new WebSocketServer({ host: '127.0.0.1', port: 0 });
  await once(server, 'listening');
  const clients = new Set<WebSocket>();
  const requests: ScriptedControl['requests'] = [];
  const answerTable: Record<string, Answer> = {
    'control.version': () => ({ protocol: PROTOCOL, server_version: 'test', principal: 'admin' }),
    ...answers,
  };
  server.on('connection', (socket) => {
    clients.add(socket);
    socket.on('close', () => clients.delete(socket));
    socket.on('message', (data) => {
      const { type, id, payload } = JSON.parse(data.toString()) as { type: string; id: string; payload: Record<string, unknown> };
      requests.push({ type, payload });
      const frame = raw[type]?.(id, payload) ?? { channel: 'control', type, id, ok: true, payload: answerTable[type]?.(payload) ?? {} };
      if (frame instanceof CloseWith) socket.close(frame.code, frame.reason);
      else socket.send(JSON.stringify(frame));
    });
  });
  const { port } = server.address() as AddressInfo;
  const cut = (): void => clients.forEach((socket) => socket.terminate());
  return {
    url: `ws://127.0.0.1:${port}`,
    requests,
    send(frame) {
      for (const socket of clients) socket.send(typeof frame === 'string' ? frame : JSON.stringify(frame));
    },
    cut,
    async close() {
      cut();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
