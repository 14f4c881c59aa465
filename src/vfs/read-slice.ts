/** Serves any offset of a fixed buffer (lib9p `readbuf`). */
export function readSlice(data: Buffer, offset: number, length: number): Buffer {
  if (offset >= data.length) return Buffer.alloc(0);
  return data.subarray(offset, Math.min(data.length, offset + length));
}
