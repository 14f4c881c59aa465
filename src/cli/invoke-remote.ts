import { invokeOnNode } from '../world/relay-invoke.js';
import { attachProject, connectClient } from './client-connection.js';

// Imported by `acheron invoke` only when it goes through the control server: the mount path loads no ws.

export type RemoteInvokeArgs = Parameters<typeof connectClient>[0] & Parameters<typeof attachProject>[1] & { node: string; service: string };

/** `acheron invoke --node N` with a control URL: one relayed invocation on the node; its outcome document. */
export async function invokeRemote(args: RemoteInvokeArgs, payload: Buffer): Promise<Buffer> {
  const client = await connectClient(args);
  try {
    const attached = await attachProject(client, args);
    // A session without `read` may still invoke (the relay needs `invoke` alone): it cannot read the catalog.
    return await invokeOnNode(client, args.node, args.service, payload, { readsCatalog: attached === undefined || attached.actions.read === 'allowed' });
  } finally {
    await client.close();
  }
}
