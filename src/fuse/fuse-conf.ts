import { readFile } from 'node:fs/promises';

/** fusermount's configuration file (fuse3): it decides whether a user other than root may mount with allow_other. */
export const FUSE_CONF = '/etc/fuse.conf';

/**
 * Whether `path` has a `user_allow_other` line, read as fusermount reads it: `#` starts a comment,
 * blanks around the word do not count. A missing or unreadable file has none.
 */
export async function allowsUserAllowOther(path: string = FUSE_CONF): Promise<boolean> {
  const text = await readFile(path, 'utf8').catch(() => '');
  return text.split('\n').some((line) => line.replace(/#.*/, '').trim() === 'user_allow_other');
}
