import type { WebSocket } from 'ws';

/** How long a peer asked for proof of life has to answer. */
const PROBE_MS = 2_000;

/**
 * Whether the peer of `socket` answers a ping within PROBE_MS. A socket whose peer is gone without
 * a FIN stays open until two periodic pings went unanswered, so an open tunnel alone is no proof
 * the node is there (etcd's catalog asks before it vouches for one: lease-expiry.ts).
 */
export function answersPing(socket: WebSocket): Promise<boolean> {
  if (socket.readyState !== socket.OPEN) return Promise.resolve(false);
  return new Promise((resolve) => {
    const onPong = (): void => {
      clearTimeout(timer);
      resolve(true);
    };
    const timer = setTimeout(() => {
      socket.off('pong', onPong);
      resolve(false);
    }, PROBE_MS);
    socket.once('pong', onPong);
    socket.ping();
  });
}
