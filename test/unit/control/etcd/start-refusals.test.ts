// etcd mistakes that no retry fixes are named at once with the flag to change (operator review:
// they were all "etcd unreachable … for 10000 ms", or a bare `PEM routines::no start line`): a file
// that is not PEM is refused before connecting, and etcd's refusals of credentials, permissions and
// TLS trust are told apart from an etcd that is down.
import t from 'tap';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { clientOptions } from '../../../../src/control/etcd/client-options.js';
import { configurationProblem } from '../../../../src/control/etcd/failure.js';
import type { EtcdOptions } from '../../../../src/control/etcd/options.js';
import { tempDir } from '../../../helpers/node.js';

const base: EtcdOptions = { endpoints: ['https://127.0.0.1:2379'], prefix: '/acheron/', callTimeoutMs: 1_500, startTimeoutMs: 10_000 };

t.test('a file that is not PEM: a TypeError naming the flag and the file', async (tt) => {
  const dir = await tempDir(tt);
  const cert = join(dir, 'ca.pem');
  const key = join(dir, 'ca.key');
  const junk = join(dir, 'junk');
  await writeFile(cert, '-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n');
  await writeFile(key, '-----BEGIN PRIVATE KEY-----\r\nAAAA\r\n-----END PRIVATE KEY-----\r\n');
  await writeFile(junk, 'not a certificate\n');
  await tt.rejects(
    clientOptions({ ...base, caCertFile: junk }),
    new TypeError(`--etcd-cacert ${junk}: not a PEM certificate (no -----BEGIN CERTIFICATE----- line)`),
  );
  await tt.rejects(
    clientOptions({ ...base, caCertFile: cert, certFile: key, keyFile: key }),
    new TypeError(`--etcd-cert ${key}: not a PEM certificate (no -----BEGIN CERTIFICATE----- line)`),
  );
  await tt.rejects(
    clientOptions({ ...base, caCertFile: cert, certFile: cert, keyFile: cert }),
    new TypeError(`--etcd-key ${cert}: not a PEM private key (no -----BEGIN PRIVATE KEY----- line)`),
  );
  const options = await clientOptions({ ...base, caCertFile: cert, certFile: cert, keyFile: key });
  tt.ok(options.credentials, 'PEM files (CRLF too) are taken');
});

t.test("etcd's refusals that no retry changes, each naming its flags", async (tt) => {
  const auth = { ...base, username: 'acheron', passwordFile: '/etc/pw' };
  tt.match(
    configurationProblem('3 INVALID_ARGUMENT: etcdserver: authentication failed, invalid user ID or password', auth),
    /^etcd refused the credentials \(--etcd-username acheron, --etcd-password-file \/etc\/pw\): 3 INVALID_ARGUMENT/,
  );
  tt.match(
    configurationProblem('3 INVALID_ARGUMENT: etcdserver: user name is empty', base),
    /^etcd requires authentication: give --etcd-username and --etcd-password-file/,
  );
  tt.match(
    configurationProblem('7 PERMISSION_DENIED: etcdserver: permission denied', auth),
    /^etcd user acheron may not read --etcd-prefix \/acheron\/: grant its role readwrite/,
  );
  tt.match(
    configurationProblem('no etcd member could serve it (last error: unable to verify the first certificate)', { ...base, caCertFile: '/etc/ca.pem' }),
    /^the etcd members' TLS certificate is not trusted with --etcd-cacert \/etc\/ca\.pem/,
  );
  tt.match(
    configurationProblem("last error: Hostname/IP does not match certificate's altnames: IP: 10.0.0.9 is not in the cert's list: 127.0.0.1", base),
    /^the etcd member's TLS certificate does not name the host of --etcd-endpoints/,
    'a name the certificate does not list: not the CA',
  );
  tt.match(
    configurationProblem('last error: certificate has expired', base),
    /^the etcd member's TLS certificate is expired or not yet valid/,
    'an expired certificate: not the CA either',
  );
  tt.equal(
    configurationProblem('no etcd member could serve it (last error: connect ECONNREFUSED 127.0.0.1:2379)', base),
    undefined,
    'etcd down: worth waiting for',
  );
  tt.equal(configurationProblem('14 UNAVAILABLE: etcdserver: leader changed', base), undefined, 'an election: worth waiting for');
});
