import type { Logger } from 'pino';
import type { ControlClient } from '../protocol/control-client.js';
import { payloadOf, type ServerFrame } from '../protocol/envelope.js';
import type { RelayRequest } from '../protocol/types.gen.js';
import type { RelayServer } from './relay-server.js';

/**
 * What the node does with its control server's pushes: relayed operations go to its RelayServer
 * (SPEC §9), and their replies back on `client()`. Other pushes are not for nodes.
 */
export function nodePushes(client: () => ControlClient | undefined, relay: RelayServer | undefined, log: Logger): (frame: ServerFrame) => void {
  return (frame) => {
    if (!relay || !frame.ok) return;
    if (frame.type === 'control.relay_request') {
      const request = payloadOf<RelayRequest>(frame);
      void relay
        .execute(request)
        .then((outcome) => client()?.request('control.relay_reply', { relay_id: request.relay_id, ...outcome }))
        .catch((error: unknown) => log.warn({ err: error, relay_id: request.relay_id }, 'could not answer a relayed operation'));
    } else if (frame.type === 'control.relay_session_closed') void relay.dropSession((frame.payload as { session: string }).session);
  };
}
