// How a command's exit treats its stdout (CommandOutput): it waits for what was written, a reader
// that left (EPIPE) is no failure, any other stdout error is exit 1 with one line on stderr.
import t from 'tap';
import { Writable } from 'node:stream';
import { CommandOutput } from '../../../src/cli/command-output.js';

/** A stream that takes `delayMs` per write, failing every write with `errno` when given. */
function stream(options: { delayMs?: number; errno?: string } = {}): Writable & { text: string } {
  const out = new Writable({
    write(chunk: Buffer, _encoding, callback) {
      setTimeout(() => {
        if (options.errno) return callback(Object.assign(new Error(`write ${options.errno}`), { code: options.errno }));
        out.text += chunk.toString();
        callback();
      }, options.delayMs ?? 0);
    },
  }) as Writable & { text: string };
  out.text = '';
  return out;
}

t.test('the exit waits until what was written has been taken', async (t) => {
  const stdout = stream({ delayMs: 50 });
  const output = new CommandOutput(stdout, stream());
  stdout.write('a'.repeat(100_000));
  stdout.write('last line\n');
  t.equal(await output.exitCode(0), 0);
  t.equal(stdout.text.length, 100_010, 'all of it, before the exit code was known');
});

t.test('a reader that left (EPIPE): readerGone settles, the exit code stays, nothing is said', async (t) => {
  const stderr = stream();
  const output = new CommandOutput(stream({ errno: 'EPIPE' }), stderr);
  let gone = false;
  void output.readerGone.then(() => (gone = true));
  t.equal(await output.exitCode(0), 0);
  t.ok(gone, 'readerGone settled');
  t.equal(stderr.text, '');
});

t.test('any other stdout failure lost output: exit 1 (a failure code stays), one line naming it', async (t) => {
  const stderr = stream();
  t.equal(await new CommandOutput(stream({ errno: 'EIO' }), stderr).exitCode(0), 1);
  t.equal(stderr.text, 'acheron: stdout: write EIO\n');
  t.equal(await new CommandOutput(stream({ errno: 'EIO' }), stream()).exitCode(2), 2, 'bad usage stays exit 2');
});
