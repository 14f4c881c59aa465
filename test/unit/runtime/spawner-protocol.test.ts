import t from 'tap';
import { fromWireResult, fromWireSpec, toWireResult, toWireSpec } from '../../../src/runtime/spawner-protocol.js';
import type { DriverSpec, RunResult } from '../../../src/runtime/run-result.js';

// Every byte value, so a lossy text encoding anywhere on the link would show.
const allBytes = Buffer.from(Array.from({ length: 256 }, (_, i) => i));

t.test('a spec crosses the JSON link with its payload bytes intact', async (tt) => {
  const env = { A: '1' };
  const spec: DriverSpec = {
    file: '/bin/cat',
    args: ['-u'],
    cwd: '/',
    env,
    invocationId: 'inv-1',
    input: allBytes,
    timeoutMs: 5,
    killGraceMs: 6,
    maxOutputBytes: 7,
  };
  const { env: _env, ...rest } = spec;
  const wire = JSON.parse(JSON.stringify(toWireSpec(rest))) as ReturnType<typeof toWireSpec>;
  tt.type(wire.input, 'string');
  const back = fromWireSpec(wire, env);
  tt.same(back, spec);
  tt.ok(back.input.equals(allBytes));
  tt.equal(back.env, env, 'the environment is the one given, not a copy');
});

t.test('a result crosses the JSON link with its output bytes intact', async (tt) => {
  const result: RunResult = {
    state: 'error',
    exitCode: 3,
    signal: null,
    stdout: allBytes,
    stderr: Buffer.from([0xff, 0xfe]),
    outputCapped: false,
    spawnFailed: false,
    startedMs: 1,
    durationMs: 2,
    shortMessage: 'x exited with code 3',
  };
  const back = fromWireResult(JSON.parse(JSON.stringify(toWireResult(result))) as ReturnType<typeof toWireResult>);
  tt.same(back, result);
  tt.ok(back.stdout.equals(allBytes));
  tt.ok(back.stderr.equals(Buffer.from([0xff, 0xfe])));
});
