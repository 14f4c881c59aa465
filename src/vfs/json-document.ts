/** Every JSON document of a synthetic tree: pretty, with a final newline (so `cat` output ends cleanly). */
export const json = (value: unknown): string => JSON.stringify(value, null, 2) + '\n';
