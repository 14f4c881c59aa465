// --store and the etcd options (src/cli/store-options.ts): what makes EtcdOptions, and every bad
// combination a usage error naming the option; so is a file they name that cannot be read or is
// not PEM (as a missing --tls-cert is), where a missing --etcd-cacert failed the start (exit 1).
import t from 'tap';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { UsageError } from '../../../src/cli/exit.js';
import { etcdOptionsFrom, etcdStoreOptions, type StoreArgs } from '../../../src/cli/store-options.js';
import { tempDir } from '../../helpers/node.js';

const base: StoreArgs = { store: 'etcd', 'etcd-prefix': '/acheron/', 'etcd-call-timeout-ms': 1500, 'etcd-start-timeout-ms': 10_000 };

t.test('the file store needs nothing; etcd options without --store etcd are refused', async (t) => {
  t.equal(etcdOptionsFrom({ ...base, store: 'file' }), undefined);
  t.throws(() => etcdOptionsFrom({ ...base, store: 'file', 'etcd-endpoints': 'http://a:1' }), new UsageError('--etcd-endpoints needs --store etcd'));
});

t.test('endpoints: comma-separated or repeated, a bare host:port gets http (https with a CA)', async (t) => {
  t.same(etcdOptionsFrom({ ...base, 'etcd-endpoints': 'http://10.0.0.1:2379, 10.0.0.2:2379' })?.endpoints, ['http://10.0.0.1:2379', 'http://10.0.0.2:2379']);
  t.same(etcdOptionsFrom({ ...base, 'etcd-endpoints': ['http://a:1', 'http://b:2,http://c:3'] })?.endpoints, ['http://a:1', 'http://b:2', 'http://c:3']);
  t.same(etcdOptionsFrom({ ...base, 'etcd-endpoints': 'a:1', 'etcd-cacert': '/ca.pem' })?.endpoints, ['https://a:1']);
});

t.test('bad options: a usage error naming the option', async (t) => {
  const cases: Array<[Partial<StoreArgs>, string]> = [
    [{}, '--store etcd needs --etcd-endpoints URL[,URL...]'],
    [{ 'etcd-endpoints': '' }, '--etcd-endpoints: at least one URL is needed (http://host:2379,...)'],
    [{ 'etcd-endpoints': 'ftp://x:1' }, '--etcd-endpoints "ftp://x:1": expected http(s)://host:port and nothing more'],
    [{ 'etcd-endpoints': 'http://x' }, '--etcd-endpoints "http://x": expected http(s)://host:port and nothing more'],
    [{ 'etcd-endpoints': 'http://x:1/v3' }, '--etcd-endpoints "http://x:1/v3": expected http(s)://host:port and nothing more'],
    [{ 'etcd-endpoints': 'http://a:1,https://b:2' }, '--etcd-endpoints http://a:1,https://b:2: all http or all https, not a mix'],
    [
      { 'etcd-endpoints': 'http://a:1', 'etcd-prefix': 'acheron' },
      '--etcd-prefix "acheron": must be a key prefix ending in "/" other than "/" alone (the whole keyspace), e.g. the default /acheron/',
    ],
    [
      { 'etcd-endpoints': 'http://a:1', 'etcd-prefix': '/' },
      '--etcd-prefix "/": must be a key prefix ending in "/" other than "/" alone (the whole keyspace), e.g. the default /acheron/',
    ],
    [{ 'etcd-endpoints': 'https://a:1', 'etcd-cert': '/c.pem' }, '--etcd-cert and --etcd-key go together'],
    [{ 'etcd-endpoints': 'https://a:1', 'etcd-cert': '/c.pem', 'etcd-key': '/k.pem' }, '--etcd-cert needs --etcd-cacert'],
    [{ 'etcd-endpoints': 'http://a:1', 'etcd-cacert': '/ca.pem' }, '--etcd-cacert needs https:// endpoints'],
    [{ 'etcd-endpoints': 'http://a:1', 'etcd-username': 'u' }, '--etcd-username and --etcd-password-file go together'],
    [{ 'etcd-endpoints': 'http://a:1', 'etcd-call-timeout-ms': 0 }, '--etcd-call-timeout-ms 0: expected a positive integer'],
  ];
  for (const [args, message] of cases) t.throws(() => etcdOptionsFrom({ ...base, ...args }), new UsageError(message), message);
});

t.test('etcd files that cannot be read or are not PEM: a usage error naming the flag and the file', async (t) => {
  const dir = await tempDir(t);
  const [pem, key, junk, pw, missing] = ['ca.pem', 'c.key', 'junk', 'pw', 'missing'].map((name) => join(dir, name)) as [string, string, string, string, string];
  await writeFile(pem, '-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n');
  await writeFile(key, '-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n');
  await writeFile(junk, 'not PEM\n');
  await writeFile(pw, 'secret\n');
  const tls = { ...base, 'etcd-endpoints': 'https://a:1', 'etcd-cacert': pem, 'etcd-cert': pem, 'etcd-key': key };
  const auth = { ...base, 'etcd-endpoints': 'http://a:1', 'etcd-username': 'acheron', 'etcd-password-file': pw };
  t.same((await etcdStoreOptions(tls))?.endpoints, ['https://a:1'], 'readable PEM files: the options');
  t.ok(await etcdStoreOptions(auth), 'a readable password file');
  const enoent = (flag: string): RegExp => new RegExp(`^${flag} ${missing}: ENOENT: no such file or directory`);
  const cases: Array<[StoreArgs, RegExp | string]> = [
    [{ ...tls, 'etcd-cacert': missing }, enoent('--etcd-cacert')],
    [{ ...tls, 'etcd-cert': missing }, enoent('--etcd-cert')],
    [{ ...tls, 'etcd-key': missing }, enoent('--etcd-key')],
    [{ ...tls, 'etcd-cacert': dir }, new RegExp(`^--etcd-cacert ${dir}: EISDIR`)],
    [{ ...tls, 'etcd-cacert': junk }, `--etcd-cacert ${junk}: not a PEM certificate (no -----BEGIN CERTIFICATE----- line)`],
    [{ ...auth, 'etcd-password-file': missing }, enoent('--etcd-password-file')],
  ];
  for (const [args, message] of cases) await t.rejects(etcdStoreOptions(args), { constructor: UsageError, message }, String(message));
});
