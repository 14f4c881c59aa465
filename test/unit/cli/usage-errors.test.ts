// SPEC §1: bad usage names what was wrong. yargs counts missing positionals ("got 0, need at least
// 1"); the CLI names them, with the command's usage line (src/cli/usage-errors.ts).
import t from 'tap';
import {
  commandNamesOf,
  namingExtraArguments,
  namingMissingArguments,
  namingUnknownCommand,
  unknownCommandBeforeHelp,
  endOfOptionsRefusal,
  optionBeforeCommandRefusal,
  usageLineOf,
} from '../../../src/cli/usage-errors.js';

const tooFew = (got: number, need: number): string => `Not enough non-option arguments: got ${got}, need at least ${need}`;

t.test('the missing positionals by name, with the usage line', async (t) => {
  t.equal(namingMissingArguments(tooFew(0, 1), '$0 node get <node_id>'), 'node get: missing <node_id> (usage: acheron node get <node_id>)');
  t.equal(namingMissingArguments(tooFew(0, 1), '$0 invoke <service> [payload]'), 'invoke: missing <service> (usage: acheron invoke <service> [payload])');
  t.equal(
    namingMissingArguments(tooFew(1, 2), '$0 copy <from> <to> [mode]'),
    'copy: missing <to> (usage: acheron copy <from> <to> [mode])',
    'only those not given',
  );
  t.equal(namingMissingArguments(tooFew(0, 2), '$0 copy <from> <to>'), 'copy: missing <from> <to> (usage: acheron copy <from> <to>)');
});

t.test("anything else, or without a usage line, stays yargs' message", async (t) => {
  t.equal(namingMissingArguments('Unknown argument: b', '$0 node get <node_id>'), 'Unknown argument: b');
  t.equal(namingMissingArguments(tooFew(0, 1), undefined), tooFew(0, 1));
  t.equal(namingMissingArguments(tooFew(0, 1), '$0 node'), tooFew(0, 1), 'a usage line without positionals');
  t.equal(namingMissingArguments(tooFew(1, 1), '$0 node get <node_id>'), tooFew(1, 1), 'none missing by the line');
});

t.test("usageLineOf: the first usage of yargs' usage instance, or nothing", async (t) => {
  t.equal(usageLineOf({ getUsage: () => [['$0 node get <node_id>', 'show one node']] }), '$0 node get <node_id>');
  t.equal(usageLineOf({ getUsage: () => [] }), undefined);
  t.equal(usageLineOf({}), undefined, 'another yargs without getUsage');
  t.equal(usageLineOf(undefined), undefined);
});

t.test("commandNamesOf: the first word of each command in yargs' usage instance, or nothing", async (t) => {
  t.same(
    commandNamesOf({
      getCommands: () => [
        ['node', 'run the node daemon'],
        ['invoke <service> [payload]', 'invoke'],
        ['token <action> [id]', 'tokens'],
      ],
    }),
    ['node', 'invoke', 'token'],
  );
  t.same(commandNamesOf({ getCommands: () => [] }), []);
  t.same(commandNamesOf({}), [], 'another yargs without getCommands');
  t.same(commandNamesOf(undefined), []);
});

t.test('an unknown command: where it was looked for, what there is, the command meant', async (t) => {
  const acheronCommands = ['node', 'invoke', 'token'];
  const nodeCommands = ['list', 'watch', 'get'];
  const top = '(commands: node, invoke, token)';
  t.equal(
    namingUnknownCommand('Unknown command: watch', 'acheron', acheronCommands, nodeCommands),
    `unknown command watch: did you mean acheron node watch? ${top}`,
  );
  t.equal(namingUnknownCommand('Unknown command: nodes', 'acheron', acheronCommands, nodeCommands), `unknown command nodes: did you mean acheron node? ${top}`);
  t.equal(namingUnknownCommand('Unknown command: tok', 'acheron', acheronCommands, nodeCommands), `unknown command tok: did you mean acheron token? ${top}`);
  t.equal(
    namingUnknownCommand('Unknown command: catalog', 'acheron', acheronCommands, nodeCommands),
    `unknown command catalog ${top}`,
    'nothing near: only the list',
  );
  t.equal(
    namingUnknownCommand('Unknown command: listt', 'node', nodeCommands, nodeCommands),
    'unknown command node listt: did you mean acheron node list? (commands: list, watch, get; acheron node alone runs the daemon)',
  );
  t.equal(
    namingUnknownCommand('Unknown commands: lst, x', 'node', nodeCommands, nodeCommands),
    'unknown command node lst (commands: list, watch, get; acheron node alone runs the daemon)',
    'several: the first (the raw yargs message came through)',
  );
  t.equal(namingUnknownCommand('Unknown argument: b', 'acheron', acheronCommands, nodeCommands), 'Unknown argument: b', 'any other message stays');
});

t.test('words past the last positional: extra arguments, with the usage line (yargs calls them unknown commands)', async (t) => {
  t.equal(
    namingExtraArguments('Unknown command: 1}', '$0 invoke <service> [payload]'),
    'invoke: unexpected argument 1} (usage: acheron invoke <service> [payload]; quote an argument that has spaces)',
    'an unquoted payload with a space (was: unknown command 1} and the list of top-level commands)',
  );
  t.equal(
    namingExtraArguments('Unknown commands: b, c', '$0 project <action> [project_id]'),
    'project: unexpected arguments b c (usage: acheron project <action> [project_id]; quote an argument that has spaces)',
  );
  t.equal(
    namingExtraArguments('Unknown command: extra', '$0 control'),
    'control: unexpected argument extra (acheron control takes options only; see --help)',
    'a command without positionals (was: unknown command extra, and the list of top-level commands)',
  );
  t.equal(namingExtraArguments('Unknown command: nodes', undefined), 'Unknown command: nodes', 'the top level: a command it is');
  t.equal(namingExtraArguments('Unknown argument: b', '$0 node get <node_id>'), 'Unknown argument: b', 'any other message stays');
});

t.test('--help after an unknown command: refused as without --help (yargs printed the help and exited 0)', async (t) => {
  const commands = ['node', 'invoke', 'project'];
  const nodeCommands = ['list', 'watch'];
  const refusal = (...argv: string[]): string | undefined => unknownCommandBeforeHelp(argv, commands, nodeCommands, { project: ['list', 'get'] });
  t.equal(refusal('catalog', '--help'), 'unknown command catalog (commands: node, invoke, project)');
  t.equal(refusal('watch', '--help'), 'unknown command watch: did you mean acheron node watch? (commands: node, invoke, project)');
  t.equal(refusal('node', 'lst', '--help'), 'unknown command node lst (commands: list, watch; acheron node alone runs the daemon)');
  t.equal(refusal('', '--help'), 'unknown command "" (commands: node, invoke, project)', 'an empty argument, shown as one (yargs said "Unknown command: ")');
  t.equal(
    refusal('project', 'bogus', '--help'),
    'Invalid values: Argument: action, Given: "bogus", Choices: "list", "get"',
    "an action: yargs' words without --help",
  );
  for (const argv of [
    ['project', 'get', '--help'],
    ['project', '--help'],
    ['--help'],
    ['node', '--help'],
    ['node', 'list', '--help'],
    ['node', '--mount', '/x', '--help'],
    ['catalog'],
  ])
    t.equal(refusal(...argv), undefined, `${argv.join(' ')}: left to yargs`);
});

t.test('an option before the command is named (yargs took the command for its value: "unknown command list")', async (t) => {
  const said = 'before the command: options go after it (acheron <command> [options]; see --help)';
  t.equal(optionBeforeCommandRefusal(['--bogus', 'node', 'list']), `unknown option --bogus ${said}`);
  t.equal(optionBeforeCommandRefusal(['-x']), `unknown option -x ${said}`);
  t.equal(optionBeforeCommandRefusal(['--json=1', 'node', 'list']), `unknown option --json ${said}`, 'named without its value');
  for (const argv of [[], ['node', '--bogus'], ['--help'], ['--version'], ['--help=false', 'node'], ['--', 'x']])
    t.equal(optionBeforeCommandRefusal(argv), undefined, `${argv.join(' ') || '(none)'}: not this refusal`);
});

t.test("'--' is refused: yargs dropped what followed it without a word", async (t) => {
  t.match(endOfOptionsRefusal(['invoke', 'echo', '--', '{}', '--mount', '/mnt/n1']), /^'--' is not taken: what follows it would be ignored/);
  t.equal(endOfOptionsRefusal(['invoke', 'echo', '{}', '--mount', '/mnt/n1']), undefined);
  t.equal(unknownCommandBeforeHelp(['bogus', '--version'], ['node'], [], {}), 'unknown command bogus (commands: node)', '--version as --help');
  t.equal(unknownCommandBeforeHelp(['--help', 'bogus'], ['node'], [], {}), 'unknown command bogus (commands: node)', 'wherever --help stands');
  t.equal(
    unknownCommandBeforeHelp(['bogus', '--help=true'], ['node'], [], {}),
    'unknown command bogus (commands: node)',
    '--help with a value yargs takes as true',
  );
  t.equal(unknownCommandBeforeHelp(['bogus', '--help=false'], ['node'], [], {}), undefined, '--help=false asks for nothing: yargs names the command');
});
