/**
 * yargs refuses a command line with too few positionals by counting them ("Not enough non-option
 * arguments: got 0, need at least 1"). With the command's usage line as yargs keeps it (`$0 node get
 * <node_id>`), this names the missing ones instead: `node get: missing <node_id> (usage: acheron node
 * get <node_id>)`. Any other message, or one without a usage line, stays as it is.
 */
export function namingMissingArguments(message: string, usage: string | undefined): string {
  const counts = /^Not enough non-option arguments: got (\d+), need at least \d+$/.exec(message);
  if (!counts || usage === undefined) return message;
  const words = usage.trim().split(/\s+/);
  const firstPositional = words.findIndex((word) => /^[<[]/.test(word));
  const missing = words.filter((word) => word.startsWith('<')).slice(Number(counts[1]));
  if (firstPositional < 0 || missing.length === 0) return message;
  const command = words.slice(1, firstPositional).join(' ');
  return `${command}: missing ${missing.join(' ')} (usage: acheron ${words.slice(1).join(' ')})`;
}

/** The usage line of the command yargs was parsing when it refused: its usage instance, which `.fail` gets as its third argument (yargs 17; not in its types). */
export function usageLineOf(usageInstance: unknown): string | undefined {
  const usages = (usageInstance as { getUsage?: () => unknown } | undefined)?.getUsage?.();
  const first: unknown = Array.isArray(usages) ? usages[0] : undefined;
  return Array.isArray(first) && typeof first[0] === 'string' ? first[0] : undefined;
}

/** The names of the commands registered where yargs refused (its usage instance, as for usageLineOf): what `--help` lists there. */
export function commandNamesOf(usageInstance: unknown): string[] {
  const commands = (usageInstance as { getCommands?: () => unknown } | undefined)?.getCommands?.();
  if (!Array.isArray(commands)) return [];
  return commands.flatMap((command: unknown) => (Array.isArray(command) && typeof command[0] === 'string' ? [command[0].split(' ')[0] ?? ''] : []));
}

/**
 * yargs names an unknown command as "Unknown command: X". This says where it was looked for and
 * what there is, and points a subcommand of `acheron node` given on its own (`acheron watch`) or a
 * near miss of a name (`nod`, `nodes`) at the command meant:
 * `unknown command watch: did you mean acheron node watch? (commands: node, invoke, ...)`.
 * `level` is the command whose subcommand it was (`acheron` for the top level), `here` the commands
 * registered there, `nodeCommands` the subcommands of `acheron node` (a top-level word that is one of them is pointed there).
 */
export function namingUnknownCommand(message: string, level: 'acheron' | 'node', here: readonly string[], nodeCommands: readonly string[]): string {
  // Several ("Unknown commands: lst, x"): the first is the one taken for a command.
  const word = /^Unknown commands?: ([^,\s]*)/.exec(message)?.[1];
  if (word === undefined) return message;
  // An empty argument (`acheron ''`, an unset variable) is shown as one: yargs said "Unknown command: ".
  const unknown = word === '' ? '""' : word;
  const prefix = level === 'acheron' ? 'acheron' : 'acheron node';
  const near = word === '' ? undefined : here.find((name) => name.startsWith(word) || word.startsWith(name));
  const meant = near ? `${prefix} ${near}` : level === 'acheron' && nodeCommands.includes(unknown) ? `acheron node ${unknown}` : undefined;
  return `unknown command ${level === 'acheron' ? '' : 'node '}${unknown}${meant ? `: did you mean ${meant}?` : ''} (commands: ${here.join(', ')}${level === 'node' ? '; acheron node alone runs the daemon' : ''})`;
}

/**
 * yargs takes a word past a command's last positional for an unknown subcommand ("Unknown command:
 * extra", "Unknown commands: b, c"), so `acheron invoke echo {"a": 1}` (an unquoted payload) said
 * `unknown command 1}` and listed the top-level commands. When the command has positionals, those
 * words are extra arguments: `invoke: unexpected argument 1} (usage: acheron invoke <service>
 * [payload]; quote an argument that has spaces)`; for a command without positionals, `control:
 * unexpected argument extra (acheron control takes options only; see --help)`. The caller asks this
 * only of a command without subcommands. Any other message stays as it is.
 */
export function namingExtraArguments(message: string, usage: string | undefined): string {
  const extra = /^Unknown commands?: (.+)$/.exec(message)?.[1];
  if (extra === undefined || usage === undefined) return message;
  const words = usage.trim().split(/\s+/);
  const firstPositional = words.findIndex((word) => /^[<[]/.test(word));
  const list = extra.split(', ');
  const unexpected = `unexpected argument${list.length > 1 ? 's' : ''} ${list.join(' ')}`;
  if (firstPositional < 0) return `${words.slice(1).join(' ')}: ${unexpected} (acheron ${words.slice(1).join(' ')} takes options only; see --help)`;
  return `${words.slice(1, firstPositional).join(' ')}: ${unexpected} (usage: acheron ${words.slice(1).join(' ')}; quote an argument that has spaces)`;
}

/**
 * A refusal of yargs' in the user's terms, on one line (some of yargs' messages span lines; usage
 * errors are one: SPEC §1). `usage`: yargs' usage instance where it refused; `level`: the command
 * whose subcommand it was. Where subcommands are registered (a new one is never missing from "did
 * you mean") a stray word was taken for one (namingUnknownCommand); elsewhere too few positionals
 * are named by name and too many as extra arguments, with the command's usage line.
 */
export function namingRefusal(message: string, usage: unknown, level: 'acheron' | 'node', nodeCommands: readonly string[]): string {
  const line = usageLineOf(usage);
  const here = commandNamesOf(usage);
  const named = here.length > 0 ? namingUnknownCommand(message, level, here, nodeCommands) : namingExtraArguments(namingMissingArguments(message, line), line);
  return named.replace(/\s*\n\s*/g, ' ');
}

/**
 * `--` ends yargs' options, and what follows it is dropped without a word: `acheron invoke echo --
 * '{}' --mount /mnt/n1` invoked through the default mount, and `acheron -- bogus` did nothing and
 * exited 0. No acheron command takes arguments after it: refused, naming it.
 */
export function endOfOptionsRefusal(argv: readonly string[]): string | undefined {
  return argv.includes('--')
    ? "'--' is not taken: what follows it would be ignored (an option, a payload); give them without it, quoting a payload"
    : undefined;
}

/**
 * An option before the command: acheron has none there but --help and --version, and yargs took
 * the next word for its value (`acheron --bogus node list` said "unknown command list"), or said
 * "name a command" without naming the option.
 */
export function optionBeforeCommandRefusal(argv: readonly string[]): string | undefined {
  const option = argv[0]?.split('=')[0];
  if (option === undefined || !option.startsWith('-') || ['--', '--help', '--version'].includes(option)) return undefined;
  return `unknown option ${option} before the command: options go after it (acheron <command> [options]; see --help)`;
}

/**
 * yargs answers `--help` (and `--version`) before it looks at the command, so `acheron catalog --help` printed the
 * top-level help and exited 0, and a script probing for a command took it for there. An unknown
 * command word before `--help` (at the top level, after `node`, or an `<action>` of `token` or
 * `project`) is named as it is without `--help`; undefined when there is none. `commands`: the
 * top-level ones; `nodeCommands`: `acheron node`'s; `actions`: each command's `<action>` choices.
 */
export function unknownCommandBeforeHelp(
  argv: readonly string[],
  commands: readonly string[],
  nodeCommands: readonly string[],
  actions: Readonly<Record<string, readonly string[]>>,
): string | undefined {
  if (!argv.some(asksHelp)) return undefined;
  // Wherever they stand: `acheron --help bogus` is `acheron bogus --help`.
  const [first, second] = argv.filter((arg) => !asksHelp(arg));
  const isWord = (arg: string | undefined): arg is string => arg !== undefined && !arg.startsWith('-');
  if (isWord(first) && !commands.includes(first)) return namingUnknownCommand(`Unknown command: ${first}`, 'acheron', commands, nodeCommands);
  if (first === 'node' && isWord(second) && !nodeCommands.includes(second))
    return namingUnknownCommand(`Unknown command: ${second}`, 'node', nodeCommands, nodeCommands);
  const choices = first === undefined ? undefined : actions[first];
  // yargs' own words for a bad choice, as without --help.
  if (choices && isWord(second) && !choices.includes(second))
    return `Invalid values: Argument: action, Given: "${second}", Choices: ${choices.map((choice) => `"${choice}"`).join(', ')}`;
  return undefined;
}

/** `--help` or `--version`, also with a value yargs takes as true (`--help=true`, `--help=1`); `--help=false` is no request. */
function asksHelp(arg: string): boolean {
  const flag = /^--(?:help|version)(?:=(.*))?$/.exec(arg);
  return flag !== null && (flag[1] === undefined || !['false', '0', ''].includes(flag[1]));
}
