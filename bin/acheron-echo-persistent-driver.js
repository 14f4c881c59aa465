#!/usr/bin/env node
// Reference persistent driver (runtime.mode "persistent", docs/driver-abi.md): one process serves
// many requests, one JSON line each way: {"id","payload"} in, {"id","ok","result"|"error"} out.
// `{"fail":"why"}` answers ok:false; `{"sleep_ms":N}` answers after N ms (requests overlap).
import { createInterface } from 'node:readline';

let served = 0;
const answer = (message) => process.stdout.write(JSON.stringify(message) + '\n');
for await (const line of createInterface({ input: process.stdin })) {
  let request;
  try {
    request = JSON.parse(line);
  } catch (error) {
    process.stderr.write(`persistent echo driver: ignored a line that is not JSON: ${error.message}\n`);
    continue;
  }
  const { id, payload } = request;
  served++;
  if (payload && typeof payload.fail === 'string') {
    answer({ id, ok: false, error: payload.fail });
    continue;
  }
  const reply = () =>
    answer({ id, ok: true, result: { ok: true, service_id: process.env.ACHERON_SERVICE_ID ?? null, pid: process.pid, served, echo: payload } });
  if (payload && Number.isInteger(payload.sleep_ms)) setTimeout(reply, payload.sleep_ms);
  else reply();
}
