import { readFile } from 'node:fs/promises';

/**
 * What is wrong with the content of a token file (`--join-token-file`, `--token-file`,
 * `--project-token-file`) or a token given as text (`--token`, `ACHERON_TOKEN`, `--join-token`),
 * or undefined when its trimmed text can be a token. A token is one word (`ach_<kind>_<secret>`):
 * text with spaces or line breaks inside is more than one, typically the whole output of `acheron
 * token join` (an id and expiry line, then the token), which would else reach the server as an
 * invalid Authorization header.
 */
export function tokenTextProblem(trimmed: string): string | undefined {
  if (trimmed === '') return 'is empty';
  if (/[\s\u0000-\u001f\u007f]/.test(trimmed))
    return 'holds more than the token (spaces or several lines): write only the token (acheron token join|create|rotate print it on their last line: ... | tail -1 > FILE)';
  return undefined;
}

/** A token file's content: the token, or what is wrong with it (`isEmpty`: nothing but whitespace, which the node daemon reads as no token). */
export type TokenFileContent = { isUsable: true; token: string } | { isUsable: false; problem: string; isEmpty: boolean };

/** Text given as a token (a file's content, `--token`, `ACHERON_TOKEN`), trimmed: the token, or what is wrong with it. */
export function tokenText(text: string): TokenFileContent {
  const token = text.trim();
  const problem = tokenTextProblem(token);
  return problem === undefined ? { isUsable: true, token } : { isUsable: false, problem, isEmpty: token === '' };
}

/**
 * The token file at `path`, read now (so a token rotated into it is what the next read sees) and
 * trimmed. `readText` reads it and its errors pass through: the CLI's names the option in them.
 */
export async function readTokenFile(path: string, readText: (path: string) => Promise<string> = (file) => readFile(file, 'utf8')): Promise<TokenFileContent> {
  return tokenText(await readText(path));
}
