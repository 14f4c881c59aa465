// The fan-out frames an event once and writes the bytes to every watcher's socket beside ws
// (frames.ts WebSocketFrame): ws's own parser must read them back as one text message, whole, at
// each length the header encodes differently (7-bit, 16-bit, 64-bit), and between frames ws sent.
import t from 'tap';
import { createRequire } from 'node:module';
import type { Writable } from 'node:stream';
import { WebSocketFrame } from '../../../src/control/frames.js';

// ws exports its parser and framer at run time; its type package does not declare them.
const { Receiver, Sender } = createRequire(import.meta.url)('ws') as {
  Receiver: new (options: { isServer: boolean }) => Writable;
  Sender: { frame(data: Buffer, options: { fin: boolean; opcode: number; mask: boolean; readOnly: boolean; rsv1: boolean }): Buffer[] };
};

/** What ws's receiving side makes of `bytes`: each message as text, in order. */
function received(bytes: Buffer): Promise<string[]> {
  return new Promise((resolve, reject) => {
    const messages: string[] = [];
    const receiver = new Receiver({ isServer: false });
    receiver.on('message', (data: Buffer, isBinary: boolean) => messages.push(isBinary ? `binary:${data.length}` : data.toString()));
    receiver.on('error', reject);
    receiver.write(bytes, () => resolve(messages));
  });
}

t.test('each header length reads back as the same text message', async (t) => {
  for (const length of [0, 1, 125, 126, 127, 65535, 65536, 200_000]) {
    const text = 'x'.repeat(length);
    const parts = [Buffer.from(text.slice(0, length >> 1)), Buffer.from(text.slice(length >> 1))];
    const frame = new WebSocketFrame(parts);
    t.equal(frame.payload.toString(), text, `${length}: payload`);
    t.equal(frame.bytes.length, frame.payloadOffset + length, `${length}: header then payload`);
    t.same(await received(frame.bytes), [text], `${length} bytes: one text message`);
  }
});

t.test('frames written beside ws frames keep their order and UTF-8 text', async (t) => {
  const ours = new WebSocketFrame([Buffer.from('{"a":"é'), Buffer.from('✓"}')]);
  const theirs = Sender.frame(Buffer.from('{"b":2}'), { fin: true, opcode: 1, mask: false, readOnly: true, rsv1: false });
  t.same(await received(Buffer.concat([ours.bytes, ...theirs, ours.bytes])), ['{"a":"é✓"}', '{"b":2}', '{"a":"é✓"}']);
});
