import { readFile } from 'node:fs/promises';
import { checkEtcdOptions, type EtcdOptions } from './options.js';

/** What the files of the etcd options hold: the TLS credentials (with `--etcd-cacert`) and the password (with `--etcd-password-file`). */
export interface EtcdFiles {
  credentials?: { rootCertificate: Buffer; certChain?: Buffer; privateKey?: Buffer };
  password?: string;
}

/**
 * Reads the files the etcd options name (`--etcd-cacert`, `--etcd-cert`, `--etcd-key`,
 * `--etcd-password-file`): a TypeError naming the flag and the file when one cannot be read or is
 * not PEM. The CLI reads them before starting (a usage error then, src/cli/store-options.ts), and
 * the client again when it connects. Apart from client-options.ts, so the CLI does not load etcd3.
 */
export async function readEtcdFiles(options: EtcdOptions): Promise<EtcdFiles> {
  checkEtcdOptions(options);
  const read = async (file: string, option: string): Promise<Buffer> =>
    readFile(file).catch((error: Error) => {
      throw new TypeError(`${option} ${file}: ${error.message}`);
    });
  // Checked here: gRPC says only `PEM routines::no start line`, or fails every connection as an untrusted certificate.
  const pem = async (file: string, option: string, kind: 'CERTIFICATE' | 'PRIVATE KEY'): Promise<Buffer> => {
    const contents = await read(file, option);
    if (!new RegExp(`^-----BEGIN [A-Z ]*${kind}-----\\r?$`, 'm').test(contents.toString('latin1')))
      throw new TypeError(`${option} ${file}: not a PEM ${kind.toLowerCase()} (no -----BEGIN ${kind}----- line)`);
    return contents;
  };
  const files: EtcdFiles = {};
  if (options.caCertFile) {
    files.credentials = { rootCertificate: await pem(options.caCertFile, '--etcd-cacert', 'CERTIFICATE') };
    if (options.certFile && options.keyFile) {
      files.credentials.certChain = await pem(options.certFile, '--etcd-cert', 'CERTIFICATE');
      files.credentials.privateKey = await pem(options.keyFile, '--etcd-key', 'PRIVATE KEY');
    }
  }
  if (options.username && options.passwordFile)
    files.password = (await read(options.passwordFile, '--etcd-password-file')).toString('utf8').replace(/\r?\n$/, '');
  return files;
}
