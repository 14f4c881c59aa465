import { problemAt, type Problem } from '../protocol/schemas.js';
import type { Manifest } from '../protocol/types.gen.js';

/**
 * Rules of `runtime.type: "wasm"` beyond the schema (SPEC §4): which runtime keys belong to which
 * type. The module itself is checked by the node when it compiles it (it needs the runtime).
 */
export function checkWasmRuntime(manifest: Manifest, file: string): Problem[] {
  const runtime = manifest.runtime ?? {};
  const problems: Problem[] = [];
  if (runtime.type === 'wasm') {
    if (runtime.executable_path !== undefined)
      problems.push(
        problemAt(file, '/runtime/executable_path', 'unsupported', 'runtime type "wasm" runs runtime.module_path; executable_path belongs to "native_proc"'),
      );
    if (runtime.mode === 'persistent')
      problems.push(
        problemAt(
          file,
          '/runtime/mode',
          'unsupported',
          'runtime type "wasm" runs a fresh instance per invocation; mode "persistent" is for "native_proc" (docs/driver-abi.md says why)',
        ),
      );
    for (const key of ['cwd', 'user'] as const) {
      if (runtime[key] !== undefined)
        problems.push(
          problemAt(file, `/runtime/${key}`, 'unsupported', `runtime type "wasm" has no ${key}: a module sees only its preopens and runs inside the node`),
        );
    }
    const guests = new Set<string>();
    (runtime.wasm?.preopens ?? []).forEach((preopen, i) => {
      if (guests.has(preopen.guest_path))
        problems.push(problemAt(file, `/runtime/wasm/preopens/${i}/guest_path`, 'duplicate', `guest_path "${preopen.guest_path}" is preopened twice`));
      guests.add(preopen.guest_path);
    });
  } else {
    for (const key of ['module_path', 'wasm'] as const) {
      if (runtime[key] !== undefined) problems.push(problemAt(file, `/runtime/${key}`, 'unsupported', `runtime.${key} needs runtime.type "wasm"`));
    }
  }
  return problems;
}
