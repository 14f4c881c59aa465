/**
 * The unit tests run in a few processes rather than one per file: a tap test process costs about 2 s of
 * CPU before its first test (tap, tsx, the imports), and one per unit file was about an eighth of the
 * suite's CPU on these 2-core machines. Shard k of n imports every n-th file of test/unit (sorted), so
 * a new unit file joins a shard by itself; .taprc excludes test/unit from tap's own search. The shard
 * files are named to sort first (test/0-unit-shard-<k>.test.ts): tap starts files in name order, and
 * the longest shard started last ran on alone after every other file had ended. A unit file still
 * runs alone: `npx tap test/unit/<area>/<name>.test.ts`.
 *
 * Each file's tests queue on the shared root test in import order and run one after another, as they
 * would in a process of their own; a file's root-level teardown runs when its shard ends.
 */
import { readdir } from 'node:fs/promises';
import { pathToFileURL } from 'node:url';
import { join, relative } from 'node:path';
import t from 'tap';

const UNIT_DIR = join(import.meta.dirname, '..', 'unit');

export async function runUnitShard(shard: number, of: number): Promise<void> {
  const files = (await readdir(UNIT_DIR, { recursive: true })).filter((name) => name.endsWith('.test.ts')).sort();
  const mine = files.filter((_, index) => index % of === shard - 1).map((name) => join(UNIT_DIR, name));
  const shardFiles = (await readdir(join(UNIT_DIR, '..'))).filter((name) => /^0-unit-shard-\d+\.test\.ts$/.test(name));
  // The files load inside one test: the root is busy until the last has queued its tests. Loaded one by
  // one at the top level, the root could end between two files (it ends once idle when a file has a
  // root-level teardown), and the files after that one would never run.
  await t.test(`unit shard ${shard} of ${of}: its files load`, async (tt) => {
    // Another count of shard files than `of` would leave some unit files to no shard, or to two.
    tt.equal(shardFiles.length, of, `test/0-unit-shard-*.test.ts: ${of} files, one per shard`);
    tt.ok(mine.length > 0, 'some test files fall to this shard');
    for (const file of mine) {
      try {
        await import(pathToFileURL(file).href);
        tt.pass(relative(process.cwd(), file));
      } catch (error) {
        tt.fail(`${relative(process.cwd(), file)} did not load`, { error });
      }
    }
  });
}
