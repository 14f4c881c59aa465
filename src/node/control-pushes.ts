import type { Logger } from 'pino';
import type { ControlClient } from '../protocol/control-client.js';
import { payloadOf, type ServerFrame } from '../protocol/envelope.js';
import type { RelayRequest, StoreUnavailable } from '../protocol/types.gen.js';
import type { RelayServer } from './relay-server.js';

/**
 * What the node does with its control server's pushes: relayed operations go to its RelayServer
 * (SPEC §9), and their replies back on `client()`; a store outage (`control.store_unavailable`) to
 * `storeUnavailable` with its reason. Other pushes are not for nodes.
 */
export function nodePushes(
  client: () => ControlClient | undefined,
  relay: RelayServer | undefined,
  log: Logger,
  storeUnavailable: (reason: string) => void,
): (frame: ServerFrame) => void {
  return (frame) => {
    if (!frame.ok) return;
    if (frame.type === 'control.store_unavailable') storeUnavailable(payloadOf<StoreUnavailable>(frame).reason);
    else if (!relay) return;
    else if (frame.type === 'control.relay_request') {
      const request = payloadOf<RelayRequest>(frame);
      void relay
        .execute(request)
        .then((outcome) => client()?.request('control.relay_reply', { relay_id: request.relay_id, ...outcome }))
        .catch((error: unknown) => log.warn({ err: error, relay_id: request.relay_id }, 'could not answer a relayed operation'));
    } else if (frame.type === 'control.relay_session_closed') void relay.dropSession((frame.payload as { session: string }).session);
  };
}
