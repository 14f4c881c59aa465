#!/usr/bin/env node
// Reference driver for ABI namespace-driver-v1 (docs/driver-abi.md): reads the JSON payload from
// stdin, writes the result to stdout, diagnostics to stderr, and exits 0. `{"fail": "why"}` makes
// it exit 1 with that text on stderr, to show the failure path.
const chunks = [];
for await (const chunk of process.stdin) chunks.push(chunk);
const raw = Buffer.concat(chunks).toString('utf8');
let payload;
try {
  payload = JSON.parse(raw);
} catch (error) {
  process.stderr.write(`echo driver: stdin is not JSON: ${error.message}\n`);
  process.exit(2);
}
if (payload && typeof payload.fail === 'string') {
  process.stderr.write(`${payload.fail}\n`);
  process.exit(1);
}
process.stdout.write(
  JSON.stringify({
    ok: true,
    service_id: process.env.ACHERON_SERVICE_ID ?? null,
    node_id: process.env.ACHERON_NODE_ID ?? null,
    invocation_id: process.env.ACHERON_INVOCATION_ID ?? null,
    bytes: Buffer.byteLength(raw),
    echo: payload,
  }) + '\n',
);
