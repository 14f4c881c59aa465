// The service-files conformance suite (test/integration/suites/service-files.ts) on a node's own
// mount; service-files-world.test.ts runs the same cases on a WorldFS mount of a node. One node,
// started once for every case.
import t from 'tap';
import { startNode, tempDir } from '../helpers/node.js';
import { SERVICE_FILES_MANIFESTS, serviceFilesSuite } from './suites/service-files.js';

const NODE_ID = 'test-node';
const scratch = await tempDir(t);
const node = await startNode(t, { manifests: Object.values(SERVICE_FILES_MANIFESTS), nodeId: NODE_ID });
await serviceFilesSuite(
  t,
  { projection: 'node', nodeId: NODE_ID, servicesDir: node.servicesDir, service: (id) => node.service(id) },
  (id) => node.service(id),
  scratch,
);
