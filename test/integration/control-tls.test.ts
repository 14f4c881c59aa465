// A control server with --tls-cert/--tls-key: a node daemon joins over wss:// and publishes its
// catalog, `acheron node watch` over wss:// sees the catalog's events as they happen (the fan-out
// writes its frames to the TLS socket, frames.ts), and a client that does not trust the
// certificate is refused, saying why. Clients trust the certificate through NODE_EXTRA_CA_CERTS.
import t from 'tap';
import { spawn } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { joinArgs, joinToken, startControl } from '../helpers/control.js';
import { ACHERON, manifest, startNode, tempDir } from '../helpers/node.js';
import { q, sh, waitFor, watchdog } from '../helpers/process.js';

const dir = await tempDir(t, 'acheron-tls-');
const cert = join(dir, 'cert.pem');
const key = join(dir, 'key.pem');
const made = await sh(
  `openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=127.0.0.1 -addext subjectAltName=IP:127.0.0.1 -keyout ${q(key)} -out ${q(cert)}`,
);
if (made.code !== 0) throw new Error(`openssl: ${made.stderr}`);
const trusting = { NODE_EXTRA_CA_CERTS: cert };

const control = await startControl(t, { tls: { cert, key } });
const adminFile = join(dir, 'admin.token');
await writeFile(adminFile, control.adminToken + '\n', { mode: 0o600 });
const tokenFile = join(dir, 'join.token');
await writeFile(tokenFile, (await joinToken(control.dataDir)) + '\n', { mode: 0o600 });

/** `acheron node watch --json` as a child process: its stdout and stderr so far. */
function watch(env: NodeJS.ProcessEnv): { lines(): Array<Record<string, unknown>>; stderr(): string } {
  const child = spawn(process.execPath, [ACHERON, 'node', 'watch', '--control-url', control.url, '--token-file', adminFile, '--json', '--since', '0'], {
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true, // its own group, which the watchdog kills
    env: { ...process.env, ...env },
  });
  let out = '';
  let err = '';
  child.stdout.on('data', (chunk: Buffer) => (out += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (err += chunk.toString()));
  watchdog(child.pid as number); // killed with this test file, also when tap kills it
  const exited = new Promise((resolve) => child.once('exit', resolve));
  t.teardown(async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    await exited;
  });
  return {
    lines: () =>
      out
        .split('\n')
        .slice(0, -1)
        .map((line) => JSON.parse(line) as Record<string, unknown>),
    stderr: () => err,
  };
}

/** The services a delta event adds or updates, as `id@version`. */
const servicesOf = (event: Record<string, unknown>): string[] => {
  const delta = (event.service_delta ?? { added: [], updated: [] }) as {
    added: Array<{ service_id: string; version: string }>;
    updated: Array<{ service_id: string; version: string }>;
  };
  return [...delta.added, ...delta.updated].map((s) => `${s.service_id}@${s.version}`);
};

t.test('a node joins over wss:// and watchers over wss:// see its events, live', async (t) => {
  t.match(control.url, /^wss:\/\//);
  const watchers = [watch(trusting), watch(trusting)];
  const node = await startNode(t, {
    nodeId: 'tls-node',
    manifests: [manifest('echo', 'echo', { version: '1.0.0' })],
    args: joinArgs(control.url, tokenFile),
    env: trusting,
  });
  const published = (w: (typeof watchers)[number], version: string): boolean =>
    w.lines().some((e) => e.node_id === 'tls-node' && servicesOf(e).includes(`echo@${version}`));
  for (const w of watchers)
    await waitFor(() => published(w, '1.0.0'), { what: `the node's first upsert over TLS (stderr: ${w.stderr().slice(-300)})`, timeoutMs: 30_000 });
  // The daemon reloads the manifest and upserts the change: a live event, not a replay.
  await writeFile(join(node.servicesDir, 'echo.json'), JSON.stringify(manifest('echo', 'echo', { version: '2.0.0' })));
  for (const w of watchers) {
    await waitFor(() => published(w, '2.0.0'), { what: `the change over TLS (stderr: ${w.stderr().slice(-300)})`, timeoutMs: 30_000 });
    const change = w.lines().find((e) => servicesOf(e).includes('echo@2.0.0'));
    t.equal(change?.kind, 'upsert');
    t.equal(change?.replay, false, 'live, not replayed after a reconnect');
    t.same((change?.service_delta as { updated?: unknown[] } | undefined)?.updated?.length, 1, 'one service updated');
  }
});

t.test('a client that does not trust the certificate is refused, and says why', async (t) => {
  const untrusting = watch({ NODE_EXTRA_CA_CERTS: '' });
  await waitFor(() => /certificate/i.test(untrusting.stderr()), { what: 'a certificate error on stderr', timeoutMs: 20_000 });
  t.same(untrusting.lines(), [], 'no event');
});

t.test('a plain ws:// server asked for wss://: one line that says why, exit 1', async (t) => {
  const plain = await startControl(t);
  const r = await sh(`${q(process.execPath)} ${q(ACHERON)} node list --control-url ${q(plain.url.replace('ws://', 'wss://'))} --token-file ${q(adminFile)}`, {
    env: { ...process.env, ...trusting },
    timeoutMs: 60_000,
  });
  t.equal(r.code, 1, r.stderr);
  t.match(
    r.stderr,
    /^acheron: unavailable: no control server answered \(3 rounds over 1 URL\): wss:[^\n]*wrong version number[^\n]*\n$/,
    'one line: the code, then why',
  );
  t.notOk(
    r.stderr.split('\n').some((line) => line.trim() === 'acheron:'),
    `no line that says nothing (${JSON.stringify(r.stderr)})`,
  );
});
