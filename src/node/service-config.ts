import type { Logger } from 'pino';
import { FsError } from '../errors/errno.js';
import { parseJsonDocument } from '../errors/json-document.js';
import { SchemaError, type Schemas } from '../protocol/schemas.js';
import type { RuntimeConfig } from '../runtime/supervision.js';

const CONFIG_SCHEMA = 'https://acheron.dev/schemas/service-config.schema.json';

/**
 * Checks a `config.json` document written to a service: JSON, then the schema. The writer gets
 * EINVAL (recorded in the service's files by the tree); the log says which field.
 */
export function configParser(schemas: Schemas, log: Logger): (text: string, serviceId: string) => RuntimeConfig {
  return (text, serviceId) => {
    const file = `services/${serviceId}/config.json`;
    let value: unknown;
    try {
      value = parseJsonDocument(text, file);
    } catch (error) {
      log.warn({ service_id: serviceId }, (error as Error).message);
      throw error;
    }
    try {
      return schemas.validate<RuntimeConfig>(CONFIG_SCHEMA, value, file);
    } catch (error) {
      if (!(error instanceof SchemaError)) throw error;
      log.warn({ service_id: serviceId, problems: error.problems.map((p) => p.message) }, 'config.json rejected');
      throw new FsError('EINVAL', error.message, { cause: error });
    }
  };
}
