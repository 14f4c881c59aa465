import { ProtocolError } from '../protocol/errors.js';

/**
 * The control server's refusals tell a protocol client what to send (`control.session_attach`,
 * `project_token`); the user of a client command types flags. These rewrite the reasons such a
 * command can meet into the flags that fix them, for the one line it prints. The server's own
 * messages stay as they are for protocol clients (src/control/policy.ts, watch-policy.ts, ops.ts,
 * relay-policy.ts). A rewritten reason matches none of them again, so rewriting twice changes nothing.
 */
const IN_FLAGS: ReadonlyArray<readonly [RegExp, string]> = [
  // "a user watch needs …", "catalog reads by users need …", "relayed operations by users need …"
  [/(needs? a project session): control\.session_attach(?: \{project_id, project_token\?\})? first/, '$1: pass --project <project_id>'],
  [/attach a session to project (\S+) first \(control\.session_attach\)/, 'attach a session to project $1 first: pass --project $1'],
  [/(project \S+: \w+ needs the project token) \(attach with project_token\)/, '$1: pass --project-token-file FILE'],
  [/(wrong project token for \S+|no project \S+ with that project token)$/, '$1 (--project-token-file)'],
  [/\(check the id, or attach with project_token\)$/, '(check the id, or pass --project-token-file FILE)'],
  // An op only admins may send: the command names neither the op nor the roles, the token is what to change.
  [/^control\.\S+ is not allowed for (.+) \(only for admin\)$/, 'this command needs an admin token (--token-file), not the token of $1'],
];

/** A refusal from the control server in terms of the command line's flags (see IN_FLAGS). */
export function inFlagTerms(message: string): string {
  return IN_FLAGS.reduce((text, [pattern, replacement]) => text.replace(pattern, replacement), message);
}

/** A ProtocolError with its message in flag terms (same code and field, the original as `cause`); anything else as it is. */
export function withFlagTerms(error: unknown): unknown {
  if (!(error instanceof ProtocolError)) return error;
  const message = inFlagTerms(error.message);
  return message === error.message
    ? error
    : new ProtocolError(error.code, message, { ...(error.field === undefined ? {} : { field: error.field }), cause: error });
}
