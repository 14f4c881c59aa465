import { rename } from 'node:fs/promises';

/**
 * A damaged state file goes out of the way, renamed to `<path>.corrupt-<epoch ms>` and never deleted
 * (SPEC §5: damage is reported, never silently dropped): whoever reads the report can still look at
 * it. Returns the new name.
 */
export async function setAside(path: string): Promise<string> {
  const aside = `${path}.corrupt-${Date.now()}`;
  await rename(path, aside);
  return aside;
}
