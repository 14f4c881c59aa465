import { failureText, UsageError } from './exit.js';

/** How a mount line spells a command's flag (`mount option join_token_file`), or undefined where it has none. */
export type LineSpelling = (flag: string) => string | undefined;

/** A quoted value in a message (JSON.stringify's): the user's own text, never rewritten. */
const QUOTED = /("(?:[^"\\]|\\.)*")/;

/**
 * A command's message as a mount line must read it: each `--flag` the line spells otherwise (its
 * -o keys, its source and directory), and only outside quoted values, which are the user's own
 * text (`--label "a=--b"`).
 */
export function inMountLineTerms(message: string, spelling: LineSpelling): string {
  return message
    .split(QUOTED)
    .map((part, index) => (index % 2 === 1 ? part : part.replace(/--([a-z][a-z-]*)/g, (flag, name: string) => spelling(name) ?? flag)))
    .join('');
}

/**
 * Runs the command a mount line stands for: every failure (a usage error, a start-up failure, the
 * control server's refusal) said in the line's terms, the only ones its user has, and with its
 * exit code (2 for usage, 1 for the rest).
 */
export async function runInMountLineTerms(run: () => Promise<number>, spelling: LineSpelling): Promise<number> {
  try {
    return await run();
  } catch (error) {
    const text = inMountLineTerms(failureText(error), spelling);
    throw error instanceof UsageError ? new UsageError(text) : new Error(text, { cause: error });
  }
}
