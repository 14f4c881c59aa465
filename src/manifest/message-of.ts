/** The text of a caught value, for one-line problem messages. */
export function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
