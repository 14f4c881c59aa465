import { errnoNameOf } from '../errors/errno.js';
import type { InvokeFailure } from '../protocol/types.gen.js';
import { checkIdentifier, UsageError } from './exit.js';
import { inFlagTerms } from './flag-terms.js';
import { NODE_OPTION_SPECS } from './node-options.js';
import { WORLD_OPTIONS } from './world-options.js';
import { jsonSyntaxError } from '../errors/json-document.js';
import { invokeThroughMount, servicesParent } from './invoke-mount.js';
import { readStdin } from './option-file.js';

export interface InvokeArgs {
  service: string;
  payload: string | undefined;
  /** Absent: the node tree's default, or WorldFS's with --node. */
  mount: string | undefined;
  node: string | undefined;
  json: boolean;
  'control-url'?: string | readonly string[] | undefined;
  token?: string | undefined;
  'token-file'?: string | undefined;
  project?: string | undefined;
  'project-token-file'?: string | undefined;
}

/** What only a control server's client uses: given without one, the user meant something else. */
const CLIENT_ONLY = ['token', 'token-file', 'project', 'project-token-file'] as const;

/** An invocation refused with an errno (by the mount, or by the node or server through the relay). */
export interface Refused {
  errno: string;
  detail: string;
}

/**
 * Whether the invocation goes through the control server: `--node` with `--control-url`, or with
 * ACHERON_CONTROL_URL and no `--mount` (a mount named on the command line wins over the environment).
 */
function throughControl(args: InvokeArgs): boolean {
  if (args['control-url'] !== undefined) {
    if (args.node === undefined) throw new UsageError('--control-url needs --node: the node whose service to invoke through the control server');
    if (args.mount !== undefined) throw new UsageError('--mount and --control-url: give one (a mount to invoke through, or the control server)');
    return true;
  }
  const remote = args.node !== undefined && args.mount === undefined && Boolean(process.env.ACHERON_CONTROL_URL);
  const unused = CLIENT_ONLY.find((option) => args[option] !== undefined);
  if (!remote && unused) throw new UsageError(`--${unused} is for invoking through the control server: with --node and --control-url (or ACHERON_CONTROL_URL)`);
  return remote;
}

/**
 * `acheron invoke`: one O_RDWR transaction on control/invoke.json (write, then read back this
 * invocation's own outcome), so the exit code tells what shell redirections hide. With `--node` and
 * a control server, the same commit relayed to the node (invoke-remote.ts), without a mount.
 */
export async function runInvokeCommand(args: InvokeArgs, stdout: NodeJS.WritableStream, stderr: NodeJS.WritableStream): Promise<number> {
  for (const [what, id] of [
    ['service', args.service],
    ['--node', args.node],
  ] as const) {
    if (id !== undefined) checkIdentifier(what, id);
  }
  const remote = throughControl(args);
  const payload = args.payload === undefined ? '{}' : args.payload === '-' ? payloadText(await readStdin('payload')) : args.payload;
  try {
    JSON.parse(payload);
  } catch {
    throw new UsageError(`payload is not valid JSON: ${jsonSyntaxError(payload)}`);
  }
  const mount = remote ? undefined : (args.mount ?? (args.node === undefined ? NODE_OPTION_SPECS.mount.default : WORLD_OPTIONS.mount.default));
  const under = mount === undefined ? undefined : await servicesParent(args.node, mount);
  const outcome =
    mount === undefined || under === undefined
      ? await invokeThroughControl({ ...args, node: args.node as string }, payload)
      : await invokeThroughMount(args, mount, under, payload);
  if (!Buffer.isBuffer(outcome)) {
    // A script reading --json gets an object for a refusal too, in status.json's names for one.
    if (args.json) stdout.write(`${JSON.stringify({ errno: outcome.errno, error: outcome.detail })}\n`);
    stderr.write(refusalLine(args.service, outcome));
    return 1;
  }
  const failure = asFailure(outcome.toString('utf8'), args.service);
  if (failure) {
    if (args.json) print(stdout, outcome);
    const lastError = under === undefined ? `last_error.txt of ${args.service} on node ${args.node}` : `${under}/services/${args.service}/last_error.txt`;
    stderr.write(`acheron invoke: ${args.service}: ${failure.state}: ${failureLine(failure.error, `--json or ${lastError}`)}\n`);
    return 1;
  }
  print(stdout, outcome);
  return 0;
}

/**
 * A payload read from stdin, as text that encodes back to the very bytes read: a byte sequence
 * that is not UTF-8 is a usage error (the node would refuse it with EINVAL), where decoding it
 * leniently sent U+FFFD in its place and the invocation ran on other data; a byte order mark is
 * kept (it is not JSON, so the check below refuses it).
 */
export function payloadText(bytes: Buffer): string {
  try {
    return new TextDecoder('utf-8', { fatal: true, ignoreBOM: true }).decode(bytes);
  } catch {
    throw new UsageError('payload is not valid UTF-8 (a JSON text must be)');
  }
}

/**
 * The outcome as the node gave it, byte for byte (a text result need not be UTF-8), ending with a
 * newline (main's exit waits until it has reached the reader).
 */
export function print(stdout: NodeJS.WritableStream, outcome: Buffer): void {
  stdout.write(outcome.at(-1) === 0x0a ? outcome : Buffer.concat([outcome, Buffer.from('\n')]));
}

/** The one line of a refused invocation: the service, the errno once, and why. */
export function refusalLine(service: string, refused: Refused): string {
  return `acheron invoke: ${service}: ${refused.errno}: ${refused.detail}\n`;
}

/**
 * How much of a failure's first line the stderr line shows: a driver's stderr can be one line of
 * many kilobytes (65 KB seen), which buried the terminal; the whole is a `--json` away.
 */
export const FAILURE_LINE_MAX_CHARS = 1000;

/** The first line of a failure's `error`, cut after FAILURE_LINE_MAX_CHARS characters saying how many more there were and where the whole is (`whole`). */
export function failureLine(error: string, whole: string): string {
  const chars = Array.from(error.split('\n')[0] ?? '');
  if (chars.length <= FAILURE_LINE_MAX_CHARS) return chars.join('');
  const more = chars.length - FAILURE_LINE_MAX_CHARS;
  return `${chars.slice(0, FAILURE_LINE_MAX_CHARS).join('')}… (${more} more character${more === 1 ? '' : 's'}; the whole error: ${whole})`;
}

/** Through the control server: the outcome, or the errno the node or the server answered (anything else, a refused token, goes to main). */
async function invokeThroughControl(args: InvokeArgs & { node: string }, payload: string): Promise<Buffer | Refused> {
  const { invokeRemote } = await import('./invoke-remote.js');
  try {
    return await invokeRemote(args, Buffer.from(payload));
  } catch (error) {
    const errno = errnoNameOf(error);
    if (errno === undefined) throw error;
    return { errno, detail: inFlagTerms((error as Error).message.split('\n')[0] as string) };
  }
}

/** How a failed invocation ends: every `state` of docs/schemas/node-tree.schema.json `invoke_failure`. */
const FAILED_STATES: Record<InvokeFailure['state'], true> = { error: true, timeout: true, cancelled: true };

/**
 * A failed transaction reads back exactly `{"error", "state", "invocation_id", "status"}` with
 * this service's status. The line names `state`, this invocation's own end: status.json's state
 * is the service's (running, backoff, offline, another run's outcome).
 */
function asFailure(outcome: string, service: string): { state: string; error: string } | undefined {
  try {
    const doc = JSON.parse(outcome) as Record<string, unknown>;
    const status = doc.status as Record<string, unknown> | undefined;
    const keys = Object.keys(doc).sort().join();
    if (typeof doc.error !== 'string' || status?.service_id !== service) return undefined;
    if (keys === 'error,invocation_id,state,status' && typeof doc.state === 'string' && Object.hasOwn(FAILED_STATES, doc.state))
      return { state: doc.state, error: doc.error };
    // A node of an earlier version answers {error, status} alone: the service's state is all it says.
    if (keys === 'error,status') return { state: String(status.state), error: doc.error };
  } catch {
    // A text result is a success like any other.
  }
  return undefined;
}
