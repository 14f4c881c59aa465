import { runInMountLineTerms } from './mount-line-terms.js';
import { nodeLineSpelling, parseMountOptions, resolveNodeOptions } from './node-options.js';
import { worldLineSpelling, worldMountArgs } from './world-options.js';

// `acheron` as mount(8)'s helper (fstab): the mount line's source, directory and -o options turned
// into a node daemon or a WorldFS mount.

export const MOUNT_HELPER_DRIVER_USER = 'nobody';

/**
 * A `world:` source mounts WorldFS; any other, the node tree. Unknown options are warned of and
 * ignored, as mount(8) helpers do. Every failure is said in the line's terms (its options, not flags).
 */
export async function runMountHelper(argv: readonly string[]): Promise<number> {
  const [source, dir, , optionText = ''] = argv as [string, string, string?, string?];
  if (source.startsWith('world:')) {
    return runInMountLineTerms(async () => {
      const world = worldMountArgs(source, dir, optionText);
      for (const option of world.unknown) process.stderr.write(`acheron: warning: unknown mount option ${option} ignored\n`);
      // Taken, for scripts that pass it, but a secret on a mount line reaches fstab, mtab and ps.
      if (world.args.token !== undefined)
        process.stderr.write('acheron: warning: mount option token= shows the token in the mount line and the process list: use token_file=FILE\n');
      return (await import('./world-command.js')).runWorldCommand(world.args);
    }, worldLineSpelling);
  }
  return runInMountLineTerms(async () => {
    const { values, unknown } = parseMountOptions(optionText);
    for (const option of unknown) process.stderr.write(`acheron: warning: unknown mount option ${option} ignored\n`);
    const merged = await resolveNodeOptions({ mount: dir, daemon: true }, values);
    // Mounted by root from fstab, drivers run as nobody unless the mount says otherwise (SPEC §4).
    merged['driver-user'] ??= MOUNT_HELPER_DRIVER_USER;
    return (await import('./node-command.js')).runNodeCommand(merged);
  }, nodeLineSpelling);
}
