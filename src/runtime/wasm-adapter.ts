import { serviceEnv } from './driver-env.js';
import { interpretRun } from './native-proc-adapter.js';
import type { DriverAdapter } from './service-settings.js';
import type { WasmPool, WasmProgram } from './wasm-pool.js';

export interface WasmAdapterOptions {
  nodeId: string;
  serviceId: string;
  /** The module's path as resolved at load: argv[0] and the name in messages. */
  modulePath: string;
  program: WasmProgram;
  pool: WasmPool;
  args: string[];
  env: Record<string, string>;
  envPassthrough: string[];
  timeoutMs: number;
  maxOutputBytes: number;
}

/**
 * Driver ABI v1 over WASI (SPEC §4 `runtime.type: "wasm"`): the payload on stdin, the result on
 * stdout, stderr for diagnostics, the exit code; args and environment as for native drivers. The
 * runs go to the daemon's WasmPool instead of the spawner, and start when a worker takes them; their
 * RunResults read like a native driver's, so the outcome files are the same.
 */
export function wasmAdapter(options: WasmAdapterOptions): DriverAdapter {
  const env = serviceEnv({
    inherited: process.env,
    passthrough: options.envPassthrough,
    extra: options.env,
    identity: { nodeId: options.nodeId, serviceId: options.serviceId },
  });
  const { program, pool } = options;
  return {
    spec(raw, _value, invocationId) {
      return {
        file: options.modulePath,
        args: options.args,
        cwd: '/',
        env,
        invocationId,
        input: raw,
        timeoutMs: options.timeoutMs,
        killGraceMs: 0,
        maxOutputBytes: options.maxOutputBytes,
      };
    },
    interpret: interpretRun,
    runner: { run: (spec, signal, started) => pool.run(program, spec, { signal, started, service: options.serviceId }) },
  };
}
