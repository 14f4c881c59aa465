import { open, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { text } from 'node:stream/consumers';
import { isIdentifier } from '../protocol/identifier.js';
import { UsageError } from './exit.js';
import { jsonSyntaxError } from '../errors/json-document.js';

export interface InvokeArgs {
  service: string;
  payload: string | undefined;
  mount: string;
  node: string | undefined;
  json: boolean;
}

/** The service directory: the node tree, or WorldFS with --node. */
export function serviceDirectory(args: Pick<InvokeArgs, 'service' | 'mount' | 'node'>): string {
  for (const [what, id] of [
    ['service', args.service],
    ['--node', args.node],
  ] as const) {
    if (id !== undefined && !isIdentifier(id)) throw new UsageError(`${what} ${JSON.stringify(id)}: must be 1-128 characters of [A-Za-z0-9._-], not . or ..`);
  }
  return args.node === undefined ? join(args.mount, 'services', args.service) : join(args.mount, 'nodes', args.node, 'services', args.service);
}

/**
 * `acheron invoke`: one O_RDWR transaction on control/invoke.json (write, then read back this
 * invocation's own outcome), so the exit code tells what shell redirections hide.
 */
export async function runInvokeCommand(args: InvokeArgs, stdout: NodeJS.WritableStream, stderr: NodeJS.WritableStream): Promise<number> {
  const dir = serviceDirectory(args);
  const payload = args.payload === undefined ? '{}' : args.payload === '-' ? await text(process.stdin) : args.payload;
  try {
    JSON.parse(payload);
  } catch {
    throw new UsageError(`payload is not valid JSON: ${jsonSyntaxError(payload)}`);
  }
  let outcome: string;
  try {
    const file = await open(join(dir, 'control', 'invoke.json'), 'r+');
    try {
      await file.write(payload, 0);
      outcome = await file.readFile('utf8');
    } finally {
      await file.close();
    }
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code ?? 'ERROR';
    const detail =
      code === 'ENOENT'
        ? `no service ${args.service} under ${args.node === undefined ? args.mount : join(args.mount, 'nodes', args.node)}`
        : await lastError(dir, code, (error as Error).message);
    stderr.write(`acheron invoke: ${args.service}: ${code}: ${detail}\n`);
    return 1;
  }
  const failure = asFailure(outcome, args.service);
  if (failure) {
    if (args.json) stdout.write(outcome.endsWith('\n') ? outcome : outcome + '\n');
    stderr.write(`acheron invoke: ${args.service}: ${failure.state}: ${failure.error.split('\n')[0]}\n`);
    return 1;
  }
  stdout.write(outcome.endsWith('\n') ? outcome : outcome + '\n');
  return 0;
}

/** A failed transaction reads back exactly `{"error", "status"}` with this service's status. */
function asFailure(outcome: string, service: string): { state: string; error: string } | undefined {
  try {
    const doc = JSON.parse(outcome) as Record<string, unknown>;
    const status = doc.status as Record<string, unknown> | undefined;
    if (Object.keys(doc).length === 2 && typeof doc.error === 'string' && status?.service_id === service) {
      return { state: String(status.state), error: doc.error };
    }
  } catch {
    // A text result is a success like any other.
  }
  return undefined;
}

/** Why the transaction failed with `code`: last_error.txt's first line when it records that errno (see errorDetail). */
async function lastError(dir: string, code: string, fallback: string): Promise<string> {
  return errorDetail(await readFile(join(dir, 'last_error.txt'), 'utf8').catch(() => ''), code, fallback);
}

/**
 * The first line of `recorded` (last_error.txt) without its errno prefix (the caller names the
 * errno once), when it is this errno's; else `fallback`. Not every failure is recorded there (a
 * wait bound's ETIMEDOUT, a journal's ENOSPC): an earlier, unrelated error must not pass for it.
 */
export function errorDetail(recorded: string, code: string, fallback: string): string {
  const line = recorded.trim().split('\n')[0] ?? '';
  return line.startsWith(`${code}: `) ? line.slice(code.length + 2) || fallback : fallback;
}
