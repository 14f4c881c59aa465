// The default server id (src/control/listeners.ts) fits the pattern a --server-id given by hand
// must: an IPv6 listen host's colons are allowed, a zone's '%' is not and becomes '-'. A port out of
// range is named as such, by --listen and --control-url alike.
import { hostname } from 'node:os';
import t from 'tap';
import { SERVER_ID_PATTERN, advertiseUrlOf, defaultServerId, parseHostPort } from '../../../src/control/listeners.js';
import { parseControlUrls } from '../../../src/protocol/control-urls.js';

t.test('the default server id: <hostname>:<port> for a wildcard listener, else with the listen host; always a valid id', async (t) => {
  const cases: Array<[string, string]> = [
    ['0.0.0.0', `${hostname()}:7447`],
    ['::', `${hostname()}:7447`],
    ['127.0.0.1', `${hostname()}:127.0.0.1:7447`],
    ['::1', `${hostname()}:::1:7447`],
    ['fe80::1%eth0', `${hostname()}:fe80::1-eth0:7447`],
  ];
  for (const [host, id] of cases) {
    t.equal(defaultServerId({ host, port: 7447 }), id, host);
    t.match(defaultServerId({ host, port: 7447 }), SERVER_ID_PATTERN, `${host}: as --server-id would have to be`);
  }
  t.equal(defaultServerId({ host: `${'a'.repeat(200)}.example`, port: 7447 }).length, 128, 'at most 128 characters');
  t.ok(defaultServerId({ host: `${'a'.repeat(200)}.example`, port: 7447 }).endsWith('.example:7447'), 'keeping the address and port');
});

t.test('the advertised URL brackets an IPv6 host and names the machine for a wildcard one', async (t) => {
  t.equal(advertiseUrlOf({ host: '::1', port: 7447 }, false), 'ws://[::1]:7447');
  t.equal(advertiseUrlOf({ host: '0.0.0.0', port: 7447 }, true), `wss://${hostname()}:7447`);
});

t.test('a host:port whose port is out of range says so, not that it is no host:port', async (t) => {
  t.throws(() => parseHostPort('127.0.0.1:99999', '--listen'), { message: '--listen "127.0.0.1:99999": port 99999 is out of range (0-65535)' });
  t.throws(() => parseHostPort('127.0.0.1', '--listen'), { message: '--listen "127.0.0.1": expected host:port' });
  t.same(parseHostPort('[::1]:65535', '--listen'), { host: '::1', port: 65535, option: '--listen' });
  t.throws(() => parseControlUrls('ws://127.0.0.1:99999'), { message: '--control-url "ws://127.0.0.1:99999": port 99999 is out of range (1-65535)' });
  t.throws(() => parseControlUrls('ws://[::1]:70000/x'), { message: /port 70000 is out of range/ });
  t.same(parseControlUrls('ws://127.0.0.1:65535,wss://h:1'), ['ws://127.0.0.1:65535', 'wss://h:1']);
});
