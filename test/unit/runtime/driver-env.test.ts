import t from 'tap';
import { serviceEnv } from '../../../src/runtime/driver-env.js';

t.test(
  'secrets and ACHERON_* are withheld unless passed through; node and service ids and runtime.env added (the invocation id is added at spawn)',
  async (t) => {
    const env = serviceEnv({
      inherited: { PATH: '/bin', API_TOKEN: 'x', MY_SECRET: 'y', DB_PASSWORD: 'z', ACHERON_TOKEN: 'w', ACHERON_X: 'v', KEEP_TOKEN: 'k' },
      passthrough: ['KEEP_TOKEN'],
      extra: { MODE: 'test' },
      identity: { nodeId: 'n', serviceId: 's' },
    });
    t.same(env, { PATH: '/bin', KEEP_TOKEN: 'k', MODE: 'test', ACHERON_NODE_ID: 'n', ACHERON_SERVICE_ID: 's' });
  },
);
