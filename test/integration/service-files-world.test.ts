// The service-files conformance suite (test/integration/suites/service-files.ts) on a WorldFS mount
// of a node, through a control server; service-files-node.test.ts runs the same cases on the node's
// own mount, which is also what the live files here are compared with. One node, one server, one
// WorldFS mount, started once for every case.
import t from 'tap';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { joinToken, startControl, waitForService } from '../helpers/control.js';
import { startNode, tempDir } from '../helpers/node.js';
import { q, sh, waitFor } from '../helpers/process.js';
import { startWorld } from '../helpers/world.js';
import { SERVICE_FILES_MANIFESTS, serviceFilesSuite, type ServiceId } from './suites/service-files.js';

const NODE_ID = 'test-node';
const control = await startControl(t);
const scratch = await tempDir(t);
const tokenFile = join(scratch, 'join-token');
await writeFile(tokenFile, `${await joinToken(control.dataDir)}\n`, { mode: 0o600 });
// WorldFS follows the catalog, so it may mount before the node has joined.
const [node, world] = await Promise.all([
  startNode(t, { manifests: Object.values(SERVICE_FILES_MANIFESTS), nodeId: NODE_ID, args: ['--control-url', control.url, '--join-token-file', tokenFile] }),
  startWorld(t, { url: control.url, token: control.adminToken }),
]);
const onWorld = (id: ServiceId): string => join(world.node(NODE_ID), 'services', id);
const last = Object.keys(SERVICE_FILES_MANIFESTS).at(-1) as ServiceId;
await waitForService(control, NODE_ID, last);
await waitFor(async () => (await sh(`test -d ${q(onWorld(last))}`)).code === 0, { what: "the node's services in WorldFS", timeoutMs: 30_000 });
await serviceFilesSuite(t, { projection: 'world', nodeId: NODE_ID, servicesDir: node.servicesDir, service: onWorld }, (id) => node.service(id), scratch);
