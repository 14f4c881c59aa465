import { isAbsolute } from 'node:path';

// Which command lines run a daemon, told from argv alone: bin/acheron.js asks before it loads the
// rest of the CLI (its imports take a second or more on a busy machine), so this module imports
// nothing of ours.

/** `acheron node <these>` talk to the control server; plain `acheron node` runs the daemon. */
export const NODE_CLIENT_COMMANDS = ['list', 'watch', 'get', 'delete'];

/**
 * mount(8) runs `acheron <source> <dir> -o rw,<opts>,dev,suid` (via mount.fuse3): the second
 * argument is an absolute directory. Anything else is an ordinary command line.
 */
export function isMountHelperArgv(argv: readonly string[]): boolean {
  return argv.length >= 2 && isAbsolute(argv[1] as string) && (argv.length === 2 || argv[2] === '-o');
}

/**
 * The node daemon, WorldFS and the control server (also as mount helpers): they answer SIGHUP once
 * up (log reopened, reload), so one that comes while they load must not end them (exit 129) either.
 */
export function isDaemonArgv(argv: readonly string[]): boolean {
  if (isMountHelperArgv(argv)) return true;
  const [command, next] = argv;
  if (command === 'node') return !NODE_CLIENT_COMMANDS.includes(next as string);
  return command === 'world' || command === 'control';
}
