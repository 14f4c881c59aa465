// --log-file may be a FIFO (a log shipper reading it): the daemon opens it once and logs into it.
// Opened twice (a check, then the logger), the first close ended the reader and the second open
// then waited for a reader that never came, before anything else ran. A SIGHUP leaves a FIFO as it is.
// A log file renamed away (logrotate) is opened again at its path on SIGHUP, before the SIGHUP line:
// the daemons never reopened it and logged on into the renamed file, lost once compressed or removed.
import t from 'tap';
import { mkdir, readFile, rename, rmdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { freePort, startControl } from '../helpers/control.js';
import { ACHERON, tempDir } from '../helpers/node.js';
import { q, sh, waitFor } from '../helpers/process.js';

t.test('acheron control --log-file FIFO: it starts, logs into the FIFO and stops', async (t) => {
  const dir = await tempDir(t);
  const fifo = join(dir, 'log.fifo');
  const read = join(dir, 'read.log');
  const http = await freePort();
  // Each bounded by timeout(1), so a hang fails the test instead of outliving it. --foreground: timeout
  // passes a signal on to the server once (else also to its group: a second SIGTERM during the stop ends it, 143).
  const server = `timeout --foreground -s KILL 30 node ${q(ACHERON)} control --data-dir ${q(join(dir, 'data'))} --listen 127.0.0.1:${await freePort()} --http-listen 127.0.0.1:${http} --log-file ${q(fifo)} --log-level info`;
  const r = await sh(
    `mkfifo ${q(fifo)} && { timeout -s KILL 30 cat ${q(fifo)} > ${q(read)} & } && { ${server} & } && pid=$! &&
     for i in $(seq 150); do curl -sf http://127.0.0.1:${http}/livez > /dev/null && break; sleep 0.1; done;
     curl -sf http://127.0.0.1:${http}/livez > /dev/null && echo up; kill -HUP $pid; for i in $(seq 100); do grep -q SIGHUP ${q(read)} && break; sleep 0.1; done; kill -TERM $pid; wait $pid; echo exit=$?; wait`,
    { timeoutMs: 60_000 },
  );
  t.match(r.stdout, /^up\nexit=0\n$/, `it served, then stopped cleanly (${r.stderr.trim()})`);
  t.match(await readFile(read, 'utf8'), /SIGHUP: nothing to reload[^]*control server stopped/, 'its log lines came through the FIFO, the SIGHUP one too');
});

t.test(
  'acheron control --log-file renamed away, then SIGHUP: the file is made again and takes the lines; a reopen that fails keeps the old file',
  async (t) => {
    const server = await startControl(t);
    const pid = server.child.pid as number;
    const text = (file: string): Promise<string> => readFile(file, 'utf8').catch(() => '');
    await rename(server.logFile, `${server.logFile}.1`);
    process.kill(pid, 'SIGHUP');
    await waitFor(async () => (await text(server.logFile)).includes('SIGHUP: nothing to reload'), {
      what: 'the SIGHUP line in a new log file',
      timeoutMs: 10_000,
    });
    t.equal((await stat(server.logFile)).mode & 0o777, 0o600, 'made again as at the start: mode 0600');
    t.notMatch(await text(`${server.logFile}.1`), /SIGHUP/, 'the renamed file got none of it');
    // A directory where the file was: the reopen fails (EISDIR), and the file opened at the first SIGHUP, renamed, keeps the lines.
    await rename(server.logFile, `${server.logFile}.2`);
    await mkdir(server.logFile);
    process.kill(pid, 'SIGHUP');
    await waitFor(async () => (await text(`${server.logFile}.2`)).split('SIGHUP: nothing to reload').length === 3, {
      what: 'the second SIGHUP line in the file opened before',
      timeoutMs: 10_000,
    });
    const lines = (await text(`${server.logFile}.2`)).split('\n');
    const warningAt = lines.findIndex((line) => line.includes('log file not reopened'));
    const warning = lines[warningAt];
    t.match(
      JSON.parse(warning ?? '{}'),
      {
        level: 40,
        log_file: server.logFile,
        msg: /^log file not reopened: EISDIR: .*open '.*\.log'; logging on to the file opened before$/,
      },
      'a warning naming the path and the errno',
    );
    t.ok(warningAt >= 0 && lines.slice(warningAt).some((line) => line.includes('SIGHUP: nothing to reload')), 'then the SIGHUP line');
    await rmdir(server.logFile);
    t.match(await server.stop(), { code: 0, signal: null }, 'SIGTERM then: a clean stop');
    t.match(await text(`${server.logFile}.2`), /control server stopped/, 'later lines: in the file the SIGHUP opened');
    t.notMatch(await text(`${server.logFile}.1`), /control server stopped/, 'none in the one renamed before it');
  },
);
