import type { WebSocketFrame } from './frames.js';

/**
 * What the hubs and the ops need of a client's connection: who it is and how to send to it.
 * `ControlConnection` is one; they import this instead of it, so `connection.ts` (which dispatches
 * to the ops) is imported by none of them and src/control has no import cycle.
 */
export interface ConnectionPeer {
  readonly id: number;
  /** The socket is open: a frame sent now is not dropped. */
  readonly isOpen: boolean;
  /** Bytes queued on the socket and not yet sent: how far behind this peer is. */
  readonly bufferedBytes: number;
  send(frame: unknown): void;
  /** A text message framed for the wire once, for many peers (frames.ts). */
  sendFrame(frame: WebSocketFrame): void;
}
