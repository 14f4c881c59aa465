// A small real fleet for the console's browser tests: one control server, two real nodes joined
// to it (n1 with an echo service, a README and an export, and a service that always fails; n2
// with a cat service), and one headless
// chromium (Debian's, driven by playwright-core) shared by every page of a test file.
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';
import { ControlClient } from '../../src/protocol/control-client.js';
import { joinArgs, joinToken, startControl, type RunningControl } from './control.js';
import { manifest, startNode, tempDir, type RunningNode, type Teardown } from './node.js';
import { waitFor } from './process.js';

export const README = '# echo\n\nSays **it** back: `{"msg": "..."}`.\n\n- one\n- two\n\n<img src=x onerror="window.pwned=1"> stays text\n';
export const ECHO_SCHEMA = { input: { type: 'object', required: ['msg'], properties: { msg: { type: 'string' } } }, example: { msg: 'hi' } };

export interface ConsoleFleet {
  control: RunningControl;
  nodes: Record<'n1' | 'n2', RunningNode>;
  /** The exported directory of n1 (`data`). */
  exported: string;
  browser: Browser;
  /** Uncaught errors of every page's scripts. */
  pageErrors: string[];
  /** A fresh browser session; with a token, that token is already in its sessionStorage (no click needed). */
  newPage(t: Teardown, token?: string, project?: { project_id: string; project_token?: string }): Promise<Page>;
  /** One request as the admin, on a connection of its own. */
  admin<T>(type: string, payload?: Record<string, unknown>): Promise<T>;
}

export async function startConsoleFleet(t: Teardown): Promise<ConsoleFleet> {
  // The browser starts while the servers do.
  const launching = chromium.launch({
    executablePath: '/usr/bin/chromium',
    headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking'],
    timeout: 30_000,
  });
  t.teardown(async () => (await launching.catch(() => undefined))?.close());
  const control = await startControl(t, { args: ['--offline-grace-ms', '1000'] });
  const dir = await tempDir(t, 'acheron-console-');
  const exported = join(dir, 'exported');
  await mkdir(join(exported, 'sub'), { recursive: true });
  await writeFile(join(exported, 'hello.txt'), 'hello from n1\n');
  await writeFile(join(exported, 'sub', 'deep.txt'), 'deeper\n');
  const tokenFile = async (name: string): Promise<string> => {
    const file = join(dir, name);
    await writeFile(file, `${await joinToken(control.dataDir)}\n`, { mode: 0o600 });
    return file;
  };
  const [n1Join, n2Join] = await Promise.all([tokenFile('n1.join'), tokenFile('n2.join')]);
  const permissions = { permissions: { default: 'deny-by-default', allow_roles: ['admin', 'user'] } };
  const [n1, n2] = await Promise.all([
    startNode(t, {
      nodeId: 'n1',
      manifests: [manifest('echo', 'echo', { ...permissions, schema: ECHO_SCHEMA, help_md: README }), manifest('fail', 'fail', permissions)],
      args: [...joinArgs(control.url, n1Join), '--label', 'rack=r7', '--export', `data=${exported}`],
    }),
    startNode(t, {
      nodeId: 'n2',
      manifests: [manifest('cat', 'cat', { ...permissions, kind: 'filter' })],
      args: [...joinArgs(control.url, n2Join), '--label', 'rack=r8'],
    }),
  ]);
  const admin = async <T>(type: string, payload: Record<string, unknown> = {}): Promise<T> => {
    const client = await ControlClient.connect({ url: control.url, token: control.adminToken, requestTimeoutMs: 10_000 });
    try {
      return await client.request<T>(type, payload);
    } finally {
      client.terminate();
    }
  };
  for (const [nodeId, serviceId] of [
    ['n1', 'echo'],
    ['n2', 'cat'],
  ] as const) {
    await waitFor(
      async () => {
        const doc = await admin<{ services: Array<{ service_id: string }> }>('control.node_get', { node_id: nodeId }).catch(() => undefined);
        return doc?.services.some((s) => s.service_id === serviceId);
      },
      { what: `${nodeId}/${serviceId} in the catalog`, timeoutMs: 30_000, intervalMs: 200 },
    );
  }
  const browser = await launching;
  const pageErrors: string[] = [];
  const newPage = async (tt: Teardown, token?: string, project?: { project_id: string; project_token?: string }): Promise<Page> => {
    const context = await browser.newContext({ acceptDownloads: true, viewport: { width: 1280, height: 900 } });
    tt.teardown(() => context.close());
    if (token) {
      // What the token form would have stored in this tab's session, before the page's scripts run.
      const seed = { 'acheron.debug.token': token, ...(project ? { 'acheron.debug.project': JSON.stringify(project) } : {}) };
      await context.addInitScript({
        content: `for (const [k, v] of Object.entries(${JSON.stringify(seed)})) if (!sessionStorage.getItem(k)) sessionStorage.setItem(k, v);`,
      });
    }
    const page = await context.newPage();
    page.setDefaultTimeout(20_000);
    page.on('pageerror', (error) => pageErrors.push(error.message));
    return page;
  };
  return { control, nodes: { n1, n2 }, exported, browser, pageErrors, newPage, admin };
}
