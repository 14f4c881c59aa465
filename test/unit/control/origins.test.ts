// SPEC §6 browser auth: which Origins may use the bearer subprotocol. The server's own listeners
// (scheme from TLS, real ports, loopback also as localhost, every address of the machine for a
// wildcard listener) plus --allowed-origin; never whatever the request's Host header says.
import t from 'tap';
import { hostname } from 'node:os';
import { isOwnOrigin, ownOrigins, parseOrigin } from '../../../src/control/origins.js';

t.test('plain listeners: http only, their ports only, loopback also as localhost', async (t) => {
  const origins = ownOrigins(
    [
      { host: '127.0.0.1', port: 18790 },
      { host: '127.0.0.1', port: 18791 },
    ],
    false,
  );
  for (const origin of ['http://127.0.0.1:18791', 'http://localhost:18791', 'http://127.0.0.1:18790', 'HTTP://LOCALHOST:18791'])
    t.ok(isOwnOrigin(origins, origin), `${origin}: own`);
  for (const origin of [
    'https://127.0.0.1:18791',
    'http://127.0.0.1:18792',
    'http://127.0.0.1',
    'http://evil.example:18791',
    'http://127.0.0.1.evil.example:18791',
    'null',
    '',
    undefined,
    'http://[::1]:18791',
  ]) {
    t.notOk(isOwnOrigin(origins, origin), `${String(origin)}: not own`);
  }
});

t.test('TLS: https only', async (t) => {
  const origins = ownOrigins(
    [
      { host: 'control.example', port: 443 },
      { host: 'control.example', port: 8443 },
    ],
    true,
  );
  t.ok(isOwnOrigin(origins, 'https://control.example'), 'the default port, left out');
  t.ok(isOwnOrigin(origins, 'https://control.example:443'), 'the default port, spelled out');
  t.ok(isOwnOrigin(origins, 'https://control.example:8443'));
  t.notOk(isOwnOrigin(origins, 'http://control.example:8443'), 'http on a TLS listener');
  t.notOk(isOwnOrigin(origins, 'https://localhost:8443'), 'a named host is not loopback');
});

t.test("a wildcard listener answers to the machine's names and addresses; IPv6 is bracketed", async (t) => {
  const origins = ownOrigins(
    [
      { host: '0.0.0.0', port: 18791 },
      { host: '::1', port: 18790 },
    ],
    false,
  );
  t.ok(isOwnOrigin(origins, `http://${hostname()}:18791`), 'the host name');
  t.ok(isOwnOrigin(origins, 'http://127.0.0.1:18791'), 'an address of the machine');
  t.ok(isOwnOrigin(origins, 'http://localhost:18791'));
  t.ok(isOwnOrigin(origins, 'http://[::1]:18790'), 'an IPv6 loopback listener');
  t.notOk(isOwnOrigin(origins, 'http://evil.example:18791'));
});

t.test('--allowed-origin: normalized, exact', async (t) => {
  const allowed = ['https://Console.Example:8443/', 'http://10.0.0.5:80'].map((o) => parseOrigin(o, '--allowed-origin'));
  t.same(allowed, ['https://console.example:8443', 'http://10.0.0.5']);
  const origins = ownOrigins([{ host: '127.0.0.1', port: 1 }], false, allowed);
  t.ok(isOwnOrigin(origins, 'https://console.example:8443'));
  t.ok(isOwnOrigin(origins, 'http://10.0.0.5'));
  t.notOk(isOwnOrigin(origins, 'http://console.example:8443'), 'another scheme');
  t.notOk(isOwnOrigin(origins, 'https://console.example'), 'another port');
  for (const bad of ['console.example', 'ftp://x', 'https://x/path', 'https://x?q', 'https://u:p@x', 'https://x/#', '']) {
    t.throws(
      () => parseOrigin(bad, '--allowed-origin'),
      { name: 'TypeError', message: /^--allowed-origin .*: expected an origin, http\[s\]:\/\/host\[:port\] \(no path\)$/ },
      `${JSON.stringify(bad)} is refused`,
    );
  }
});
