import type { Logger } from 'pino';
import { FsError } from '../errors/errno.js';
import { parseJsonDocument } from '../errors/json-document.js';
import { SchemaError, type Schemas } from '../protocol/schemas.js';
import { configFileOf } from '../protocol/service-files.js';
import type { RuntimeConfig } from '../runtime/supervision.js';

const CONFIG_SCHEMA = 'https://acheron.dev/schemas/service-config.schema.json';

/**
 * Checks a `config.json` document written to a service: JSON, then the schema. The writer gets
 * EINVAL naming the field (recorded in the service's files and logged by the tree: configRefusalLog).
 */
export function configParser(schemas: Schemas): (text: string, serviceId: string) => RuntimeConfig {
  return (text, serviceId) => {
    const file = configFileOf(serviceId);
    const value = parseJsonDocument(text, file);
    try {
      return schemas.validate<RuntimeConfig>(CONFIG_SCHEMA, value, file);
    } catch (error) {
      if (!(error instanceof SchemaError)) throw error;
      throw new FsError('EINVAL', error.message, { cause: error });
    }
  };
}

/**
 * One `warn` line per refused config.json, whatever refused it (not JSON, the schema, over 64 KiB,
 * a hole): `EINVAL: services/echo/config.json: /timeot_ms: unknown key`, the errno and the line
 * last_error.txt records (docs/node-tree.md), for a redirection hides the writer's close() error.
 */
export function configRefusalLog(log: Logger): (error: FsError, serviceId: string) => void {
  return (error, serviceId) => log.warn({ service_id: serviceId, errno: error.errno }, `${error.errno}: ${error.message}`);
}
