// Write failures injected in process, for unit tests: a FileHandle method replaced for every handle
// (a full disk, a failed sync, a truncate that fails) until restored.
import { open, type FileHandle } from 'node:fs/promises';
import type { Teardown } from './node.js';

export type FileHandleMethod = 'writev' | 'datasync' | 'truncate';
type Original = (...args: never[]) => Promise<unknown>;

/** Replaces one FileHandle method for every handle until the returned restore is called (teardown restores too). */
export async function patchFileHandle(
  t: Teardown,
  method: FileHandleMethod,
  replacement: (original: Original, self: FileHandle, args: unknown[]) => Promise<unknown>,
): Promise<() => void> {
  const probe = await open(import.meta.filename, 'r');
  const proto = Object.getPrototypeOf(probe) as Record<FileHandleMethod, Original>;
  await probe.close();
  const original = proto[method];
  proto[method] = function (this: FileHandle, ...args: unknown[]) {
    return replacement(original, this, args);
  } as never;
  const restore = (): void => void (proto[method] = original);
  t.teardown(restore);
  return restore;
}

/** An error as a full disk gives it. */
export const noSpace = (): Error => Object.assign(new Error('ENOSPC: no space left on device, write'), { code: 'ENOSPC' });

/** writev that puts the first `bytes` of what it was given in the file, then fails as a full disk does. */
export const partialWrite =
  (bytes: number) =>
  async (original: Original, self: FileHandle, args: unknown[]): Promise<never> => {
    await original.call(self, [Buffer.concat(args[0] as Buffer[]).subarray(0, bytes)] as never);
    throw noSpace();
  };
