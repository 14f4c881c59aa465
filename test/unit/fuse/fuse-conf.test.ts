// fusermount lets a user other than root mount with allow_other only when /etc/fuse.conf has a
// user_allow_other line; mountTree names that line when such a mount fails (fuse-native says only
// "fuse failed"). The line is read as fusermount reads it.
import t from 'tap';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { allowsUserAllowOther } from '../../../src/fuse/fuse-conf.js';
import { tempDir } from '../../helpers/node.js';

t.test('allowsUserAllowOther', async (t) => {
  const dir = await tempDir(t);
  const cases: Array<[string, boolean, string]> = [
    ['user_allow_other\n', true, 'the line'],
    ['  user_allow_other \t\n', true, 'blanks around it'],
    ['mount_max = 1000\nuser_allow_other # let users share\n', true, 'a comment after it'],
    ['#user_allow_other\n', false, "Debian's default: commented out"],
    ['# user_allow_other - Using the allow_other mount option\n', false, 'named in a comment'],
    ['user_allow_others\n', false, 'another word'],
    ['', false, 'an empty file'],
  ];
  for (const [i, [text, expected, what]] of cases.entries()) {
    const path = join(dir, `fuse-${i}.conf`);
    await writeFile(path, text);
    t.equal(await allowsUserAllowOther(path), expected, what);
  }
  t.equal(await allowsUserAllowOther(join(dir, 'missing.conf')), false, 'no file: no line');
});
