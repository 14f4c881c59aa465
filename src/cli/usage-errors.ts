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
