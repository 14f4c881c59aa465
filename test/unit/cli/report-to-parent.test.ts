// A daemon tells the parent that detached it how its start went on fd 3 (daemonize.ts). With the
// variable that marks a detached daemon set but no parent's pipe on fd 3 (closed, or a file), it
// must go on: it crashed with "Unsupported fd type" and left its locks behind.
import t from 'tap';
import { spawn } from 'node:child_process';
import { open, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { REPO, tempDir } from '../../helpers/node.js';

const DAEMONIZE = pathToFileURL(join(REPO, 'dist', 'cli', 'daemonize.js')).href;
const SCRIPT = `const { reportToParent } = await import(${JSON.stringify(DAEMONIZE)}); reportToParent('ready'); console.log('went on');`;

/** Runs the report in a child with `fd3` as its fd 3; its exit code and output. */
function report(fd3: 'ignore' | number): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--input-type=module', '-e', SCRIPT], {
      stdio: ['ignore', 'pipe', 'pipe', fd3],
      env: { ...process.env, ACHERON_DAEMON_OPTIONS: '{}' },
    });
    let [stdout, stderr] = ['', ''];
    child.stdout?.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr?.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    child.once('error', reject);
    child.once('close', (code) => resolve({ code, stdout, stderr }));
  });
}

t.test('no fd 3 at all', async (t) => {
  const { code, stdout, stderr } = await report('ignore');
  t.equal(code, 0, stderr);
  t.equal(stdout, 'went on\n');
});

t.test('a file on fd 3', async (t) => {
  const path = join(await tempDir(t), 'fd3');
  const file = await open(path, 'w');
  t.teardown(() => file.close());
  const { code, stdout, stderr } = await report(file.fd);
  t.equal(code, 0, stderr);
  t.equal(stdout, 'went on\n');
  t.equal(await readFile(path, 'utf8'), '', 'nothing written into it');
});
