import { attachProject, connectClient } from './client-connection.js';
import { checkIdentifier } from './exit.js';
import type { resolveClient } from './client-options.js';
import type { NodeListReply, PublicNode } from '../protocol/types.gen.js';

/** `acheron node list`, `acheron node get <id>` and `acheron node delete <id>` (admin): the catalog's nodes. */
export async function runCatalogCommand(
  what: { list: true } | { get: string } | { delete: string },
  args: Parameters<typeof resolveClient>[0] & Parameters<typeof attachProject>[1] & { json: boolean },
  out: NodeJS.WritableStream,
): Promise<number> {
  if ('get' in what) checkIdentifier('node_id', what.get);
  if ('delete' in what) checkIdentifier('node_id', what.delete);
  const client = await connectClient(args);
  try {
    await attachProject(client, args);
    if ('list' in what) {
      const { nodes } = await client.request<NodeListReply>('control.node_list');
      if (args.json) out.write(JSON.stringify(nodes, null, 2) + '\n');
      else {
        out.write('NODE\tSTATE\tSERVICES\tLAST SEEN\n');
        for (const n of nodes) out.write(`${n.node_id}\t${n.state}\t${n.service_count}\t${new Date(n.last_seen_ms).toISOString()}\n`);
      }
    } else if ('delete' in what) {
      // An unknown node is the server's not_found (`no node X`), exit 1 as for `node get`.
      const reply = await client.request<{ node_id: string; deleted: true }>('control.node_delete', { node_id: what.delete });
      out.write(args.json ? JSON.stringify(reply, null, 2) + '\n' : `node ${reply.node_id} deleted\n`);
    } else {
      const node = await client.request<PublicNode>('control.node_get', { node_id: what.get });
      if (args.json) out.write(JSON.stringify(node, null, 2) + '\n');
      else {
        out.write(`node ${node.node_id}: ${node.state}, lease until ${new Date(node.lease_expires_at_ms).toISOString()}\n`);
        for (const s of node.services) out.write(`  ${s.service_id}\t${s.kind}\tv${s.version}\t${s.state}\n`);
      }
    }
    return 0;
  } finally {
    await client.close();
  }
}
