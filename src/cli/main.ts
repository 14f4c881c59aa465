/**
 * src/cli: the one `acheron` command (yargs). Owns argv: the commands, the option table and its
 * precedence (argv > mount `-o` > `--config` > defaults), the fstab mount helper's argv, `--daemon`,
 * SIGHUP → log file reopened, then reload, the root pino logger and the exit codes (`exit.ts`).
 *
 * Must not: hold behaviour of its own. A command parses, builds the options of a daemon or client from
 * node/, control/, world/ or protocol/, and maps the outcome to an exit code; anything a test or a
 * second front end would need lives in those areas.
 */
import { createRequire } from 'node:module';
import type { Argv } from 'yargs';
import { ACHERON_VERSION } from '../protocol/version.js';
import { CommandOutput } from './command-output.js';
import { DAEMON_OPTIONS_ENV } from './daemonize.js';
import { EXIT_FAILURE, EXIT_USAGE, UsageError, failureText } from './exit.js';
import { endOfOptionsRefusal, namingRefusal, optionBeforeCommandRefusal, unknownCommandBeforeHelp } from './usage-errors.js';
import { clientOptions } from './client-options.js';
import { CONTROL_OPTIONS } from './control-options.js';
import { JOIN_TTL_DEFAULT_MS, JOIN_TTL_MAX_MS, STORE_OPTIONS } from './store-options.js';
import { NODE_OPTION_SPECS, resolveNodeOptions, type NodeOptionName, type NodeOptionValues } from './node-options.js';
import { WORLD_OPTIONS, type WorldArgs } from './world-options.js';
import { runMountHelper } from './mount-helper.js';
import { NODE_CLIENT_COMMANDS, isMountHelperArgv } from './daemon-argv.js';
import { AS_GIVEN, wholeNumberFlag } from './whole-number.js';

/**
 * Each command's module, imported when that command runs: the daemon, server or client it loads
 * stays out of every other command's start (`acheron invoke` loads no FUSE, etcd or WebSocket code).
 */
const commands = {
  catalog: () => import('./catalog-command.js'),
  control: () => import('./control-command.js'),
  invoke: () => import('./invoke-command.js'),
  node: () => import('./node-command.js'),
  project: () => import('./project-command.js'),
  token: () => import('./token-command.js'),
  watch: () => import('./watch-command.js'),
  world: () => import('./world-command.js'),
};

/** The top-level commands, as registered below (cli-usage.test.ts compares them with what --help lists). */
export const COMMANDS = ['node', 'invoke', 'world', 'control', 'token', 'project'];
/** The `<action>` of `acheron token` and `acheron project`. */
const ACTIONS = { token: ['list', 'create', 'join', 'rotate', 'revoke'], project: ['list', 'get', 'upsert', 'delete', 'rotate-token'] };

/** A positional `-` (stdin) as given: yargs turns a lone `-` into '' (never valid JSON anyway). */
const stdinDash = <T>(value: T, argv: readonly string[]): T | '-' => (value === '' && argv.includes('-') ? '-' : value);

/**
 * `--file -` as `--file=-`: yargs takes a lone `-` for a positional, so the option got '' and the
 * `-` became an id, or an unknown argument after one (`project upsert p1 --file -`).
 */
const joinFileDash = (argv: readonly string[]): string[] =>
  argv.flatMap((arg, i) => (arg === '--file' && argv[i + 1] === '-' ? ['--file=-'] : arg === '-' && argv[i - 1] === '--file' ? [] : [arg]));

/** Only the options given on the command line: yargs defaults would hide config and -o values. */
function givenOptions(args: Record<string, unknown>): NodeOptionValues {
  const given: Record<string, unknown> = {};
  for (const name of Object.keys(NODE_OPTION_SPECS) as NodeOptionName[]) {
    const value = args[name];
    if (value === undefined) continue;
    if (NODE_OPTION_SPECS[name].type === 'array') given[name] = (Array.isArray(value) ? value : [value]).map(String);
    // A single-valued flag given twice: the last one wins.
    else given[name] = Array.isArray(value) ? value[value.length - 1] : value;
  }
  return given as NodeOptionValues;
}

function cli(yargs: typeof import('yargs').default, argv: readonly string[], output: CommandOutput): Argv {
  return (
    yargs(joinFileDash(argv))
      .scriptName('acheron')
      // Options are read by their long names; camelCase copies would only double yargs' messages.
      .parserConfiguration({ 'camel-case-expansion': false })
      .version(ACHERON_VERSION)
      .strict()
      .strictCommands()
      .command(
        'node',
        "run the node daemon: load services, mount the node tree; node list | get | watch | delete: the nodes in a control server's catalog",
        (y) => {
          y.command(
            'list',
            'list the nodes of the control server catalog',
            (c) => clientOptions(c),
            async (args) => {
              process.exitCode = await (await commands.catalog()).runCatalogCommand({ list: true }, args, process.stdout);
            },
          );
          y.command(
            'watch [node_id]',
            'stream catalog events, one line each (--json: each delta event as received); reconnects and resumes by itself',
            (c) =>
              clientOptions(c)
                .positional('node_id', { type: 'string', describe: 'only this node' })
                .option('replay-limit', {
                  ...wholeNumberFlag('replay-limit', { min: 0, unit: 'events' }),
                  describe: 'replay this many past events first (default 25)',
                })
                .option('since', {
                  ...wholeNumberFlag('since', { min: 0, max: Number.MAX_SAFE_INTEGER, unit: 'seq' }),
                  describe: 'replay everything after this seq',
                }),
            async (args) => {
              // Also when stdout's reader has gone (`| head -n 3`): nothing printed from then on reaches anyone.
              output.watchReader();
              const stop = new Promise<void>((resolve) => {
                process.once('SIGINT', resolve);
                process.once('SIGTERM', resolve);
                void output.readerGone.then(resolve);
              });
              process.exitCode = await (
                await commands.watch()
              ).runWatchCommand({ ...args, node_id: args.node_id as string | undefined }, process.stdout, process.stderr, stop);
            },
          );
          for (const [action, describe] of [
            ['get', 'show one node and its services'],
            ['delete', 'retire a node (admin): its services and credentials leave the catalog; a running one is disconnected for good'],
          ] as const)
            y.command(
              `${action} <node_id>`,
              describe,
              (c) => clientOptions(c).positional('node_id', { type: 'string' }),
              async (args) => {
                const what = { [action]: String(args.node_id) } as { get: string } | { delete: string };
                process.exitCode = await (await commands.catalog()).runCatalogCommand(what, args, process.stdout);
              },
            );
          // The daemon's options belong to `acheron node` itself; yargs would hand them to its client
          // subcommands too (their --help listed them, and they accepted --mount).
          if (NODE_CLIENT_COMMANDS.includes(argv[1] as string)) return y;
          for (const [name, spec] of Object.entries(NODE_OPTION_SPECS)) {
            // No yargs defaults: precedence between argv, -o, config and defaults is ours (node-options.ts),
            // and so is the check of the values.
            const { default: _default, whole: _whole, type, ...rest } = spec as typeof spec & { default?: unknown; whole?: unknown; type?: string };
            y.option(name, {
              ...rest,
              ...(type === 'number' ? AS_GIVEN : type === undefined ? {} : { type }),
              ...(type === 'array' ? { string: true } : {}),
              ...(_default === undefined ? {} : { defaultDescription: String(_default) }),
            } as never);
          }
          return y;
        },
        async (args) => {
          process.exitCode = await (await commands.node()).runNodeCommand(await resolveNodeOptions(givenOptions(args)));
        },
      )
      .command(
        'invoke <service> [payload]',
        'invoke a service through its files (or, with --node and a control server, through the control server) and print the outcome',
        (y) =>
          clientOptions(y)
            .positional('service', { type: 'string', describe: 'service id' })
            .positional('payload', { type: 'string', describe: 'JSON object, or - for stdin (default {})' })
            .option('mount', {
              type: 'string',
              defaultDescription: `${NODE_OPTION_SPECS.mount.default}; with --node: ${WORLD_OPTIONS.mount.default}`,
              describe: 'node tree (or WorldFS with --node)',
            })
            .option('node', { type: 'string', describe: 'node id: its service through WorldFS (--mount), or through the control server (--control-url)' })
            .option('control-url', {
              type: 'string',
              describe:
                'with --node: invoke through the control server, no mount needed; several (servers of one store): comma-separated or repeated, tried in turn (env ACHERON_CONTROL_URL, unless --mount is given)',
            })
            .option('json', { type: 'boolean', default: false, describe: 'print the outcome document also on failure, {errno, error} on a refusal' }),
        async (args) => {
          const payload = stdinDash(args.payload, argv);
          process.exitCode = await (
            await commands.invoke()
          ).runInvokeCommand({ ...args, service: args.service as string, payload }, process.stdout, process.stderr);
        },
      )
      .command(
        'world',
        'mount WorldFS: every node and service the token may see, from the control server',
        (y) => y.options(WORLD_OPTIONS),
        async (args) => {
          process.exitCode = await (await commands.world()).runWorldCommand(args as WorldArgs);
        },
      )
      .command(
        'control',
        'run the control server: catalog, leases, auth, metrics',
        (y) => y.options(CONTROL_OPTIONS),
        async (args) => {
          process.exitCode = await (await commands.control()).runControlCommand(args);
        },
      )
      .command(
        'token <action> [id]',
        'manage tokens in the store (data dir or etcd): list | create --user U [--agent A] | join [--ttl-ms N] | rotate <admin|user|ID> | revoke <ID>',
        (y) =>
          y
            .options(STORE_OPTIONS)
            .positional('action', { type: 'string', choices: ACTIONS.token })
            .positional('id', { type: 'string', describe: 'token id (rotate, revoke)' })
            .option('data-dir', { type: 'string', default: CONTROL_OPTIONS['data-dir'].default, describe: 'the control server data directory' })
            .option('user', { type: 'string', describe: 'user id (create)' })
            .option('agent', { type: 'string', describe: 'agent id (create)' })
            .option('ttl-ms', {
              ...wholeNumberFlag('ttl-ms', { min: 1, max: JOIN_TTL_MAX_MS, unit: 'milliseconds' }),
              describe: `join token lifetime (join; default ${JOIN_TTL_DEFAULT_MS})`,
            })
            .option('json', { type: 'boolean', default: false, describe: 'print JSON' }),
        async (args) => {
          process.exitCode = await (await commands.token()).runTokenCommand(String(args.action), args, process.stdout, process.stderr);
        },
      )
      .command(
        'project <action> [project_id]',
        'manage projects: list | get ID | upsert [ID] --file F|- | delete ID | rotate-token ID',
        (y) =>
          clientOptions(y)
            .positional('action', { type: 'string', choices: ACTIONS.project })
            .positional('project_id', { type: 'string' })
            .option('file', { type: 'string', describe: 'project document (upsert), or - for stdin' }),
        async (args) => {
          process.exitCode = await (
            await commands.project()
          ).runProjectCommand({ ...args, action: String(args.action), project_id: args.project_id as string | undefined }, process.stdout);
        },
      )
      .demandCommand(1, 'name a command (see --help)')
      .fail((message, error, usage) => {
        // yargs' own refusals (YError, also a coerce's UsageError rewrapped) are usage errors; a
        // command's failure passes as it is.
        if (error && error.name !== 'YError') throw error;
        throw new UsageError(namingRefusal(message, usage, argv[0] === 'node' ? 'node' : 'acheron', NODE_CLIENT_COMMANDS));
      })
      .help()
  );
}

/**
 * yargs' CommonJS build: its help is wrapped at word boundaries. The ES module build's cliui (8.0.1)
 * cuts a description wherever the column ends ("mou" / "nt the node tree").
 */
function loadYargs(): typeof import('yargs').default {
  return createRequire(import.meta.url)('yargs') as typeof import('yargs').default;
}

/** The exit code of `acheron <argv>`, once its output has reached the reader (CommandOutput); bin/acheron.js exits with it. */
export async function main(argv: readonly string[]): Promise<number> {
  const output = new CommandOutput(process.stdout, process.stderr);
  return output.exitCode(await run(argv, output));
}

async function run(argv: readonly string[], output: CommandOutput): Promise<number> {
  try {
    const detached = process.env[DAEMON_OPTIONS_ENV];
    if (detached !== undefined && argv[0] === 'node') return await (await commands.node()).runNodeCommand(JSON.parse(detached) as NodeOptionValues);
    if (detached !== undefined && argv[0] === 'world') return await (await commands.world()).runWorldCommand(JSON.parse(detached) as WorldArgs);
    if (isMountHelperArgv(argv)) return await runMountHelper(argv);
    const unknown = endOfOptionsRefusal(argv) ?? optionBeforeCommandRefusal(argv) ?? unknownCommandBeforeHelp(argv, COMMANDS, NODE_CLIENT_COMMANDS, ACTIONS);
    if (unknown !== undefined) throw new UsageError(unknown);
    // Imported here: the mount helper and a detached daemon (above) parse no command line.
    await cli(loadYargs(), argv, output).parseAsync();
    return typeof process.exitCode === 'number' ? process.exitCode : 0;
  } catch (error) {
    const usage = error instanceof UsageError;
    const message = failureText(error);
    process.stderr.write(`acheron: ${message.split('\n').join('\nacheron: ')}\n`);
    return usage ? EXIT_USAGE : EXIT_FAILURE;
  }
}
