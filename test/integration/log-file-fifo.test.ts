// --log-file may be a FIFO (a log shipper reading it): the daemon opens it once and logs into it.
// Opened twice (a check, then the logger), the first close ended the reader and the second open
// then waited for a reader that never came, before anything else ran.
import t from 'tap';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { freePort } from '../helpers/control.js';
import { ACHERON, tempDir } from '../helpers/node.js';
import { q, sh } from '../helpers/process.js';

t.test('acheron control --log-file FIFO: it starts, logs into the FIFO and stops', async (t) => {
  const dir = await tempDir(t);
  const fifo = join(dir, 'log.fifo');
  const read = join(dir, 'read.log');
  const http = await freePort();
  // Each bounded by timeout(1), so a hang fails the test instead of outliving it.
  const server = `timeout -s KILL 30 node ${q(ACHERON)} control --data-dir ${q(join(dir, 'data'))} --listen 127.0.0.1:${await freePort()} --http-listen 127.0.0.1:${http} --log-file ${q(fifo)} --log-level info`;
  const r = await sh(
    `mkfifo ${q(fifo)} && { timeout -s KILL 30 cat ${q(fifo)} > ${q(read)} & } && { ${server} & } && pid=$! &&
     for i in $(seq 150); do curl -sf http://127.0.0.1:${http}/livez > /dev/null && break; sleep 0.1; done;
     curl -sf http://127.0.0.1:${http}/livez > /dev/null && echo up; kill -TERM $pid; wait $pid; echo exit=$?; wait`,
    { timeoutMs: 60_000 },
  );
  t.match(r.stdout, /^up\nexit=0\n$/, `it served, then stopped cleanly (${r.stderr.trim()})`);
  t.match(await readFile(read, 'utf8'), /control server stopped/, 'its log lines came through the FIFO');
});
