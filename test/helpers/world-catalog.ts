// A WorldCatalog for unit tests against scripted servers: quiet, quick to reconnect, its own lease
// refreshes out of the way unless a test asks for them.
import pino from 'pino';
import type { Test } from 'tap';
import { loadSchemas } from '../../src/protocol/schemas.js';
import { WorldCatalog } from '../../src/world/world-catalog.js';
import type { WorldCatalogOptions } from '../../src/world/world-catalog-options.js';

/** Started; stopped (within 1 s) at the test's end, before `after` (closing its servers). */
export async function startTestCatalog(
  t: Test,
  options: Pick<WorldCatalogOptions, 'urls'> & Partial<WorldCatalogOptions>,
  after: () => unknown = () => undefined,
): Promise<WorldCatalog> {
  const catalog = new WorldCatalog({
    token: 'x',
    schemas: await loadSchemas(),
    log: pino({ level: 'silent' }),
    backoffMs: 10,
    backoffMaxMs: 60_000,
    refreshMs: 60_000,
    ...options,
  });
  t.teardown(async () => {
    await Promise.race([catalog.stop(), new Promise((resolve) => setTimeout(resolve, 1000))]);
    await after();
  });
  await catalog.start();
  return catalog;
}
