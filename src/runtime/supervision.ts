import type { ServiceConfig, SupervisionPolicy } from '../protocol/types.gen.js';

/** config.json, validated against docs/schemas/service-config.schema.json. */
export type RuntimeConfig = ServiceConfig;
export type Supervision = Required<SupervisionPolicy>;

/** The schema's defaults: no thresholds and no cooldown until config.json sets them. */
export const DEFAULT_SUPERVISION: Supervision = {
  max_consecutive_failures: 0,
  max_consecutive_timeouts: 0,
  cooldown_ms: 0,
  auto_disable_on_threshold: true,
};
