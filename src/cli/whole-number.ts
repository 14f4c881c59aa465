import { UsageError } from './exit.js';

/**
 * The longest delay a Node timer keeps: a longer one fires after 1 ms, so a lease, backoff or grace
 * period beyond it would turn into a tight loop.
 */
export const MAX_TIMER_MS = 2_147_483_647;

export interface WholeNumberRule {
  min: number;
  /** Default MAX_TIMER_MS: every such option of ours ends up in a timer or a count. */
  max?: number;
  /** What the number counts, for the message: "milliseconds", "events", "seq". */
  unit: string;
}

/**
 * One whole-number option value, as yargs (a number, NaN for text), mount -o or a config file (text or
 * a number) gives it; a UsageError naming the option as the user wrote it (`label`) and the range
 * otherwise, before anything starts with a value that cannot work.
 */
export function checkWholeNumber(label: string, raw: unknown, rule: WholeNumberRule): number {
  const max = rule.max ?? MAX_TIMER_MS;
  const value = typeof raw === 'string' && raw.trim() !== '' ? Number(raw) : raw;
  if (typeof value === 'number' && Number.isInteger(value) && value >= rule.min && value <= max) return value;
  // A NaN has no text to show (yargs passes the text as given: AS_GIVEN).
  const shown =
    typeof raw === 'number' && Number.isNaN(raw)
      ? ' (not a number)'
      : typeof raw === 'string' && raw !== ''
        ? ` ${raw}`
        : ` ${JSON.stringify(raw) ?? String(raw)}`;
  throw new UsageError(`${label}${shown}: expected a whole number from ${rule.min} to ${max} (${rule.unit})`);
}

/** The same check as a yargs `coerce`; an option given twice keeps its last value, as every other flag does. */
export function wholeNumberOption(flag: string, rule: WholeNumberRule): (given: unknown) => number {
  return (given) => checkWholeNumber(`--${flag}`, Array.isArray(given) ? given[given.length - 1] : given, rule);
}

/**
 * How yargs takes a whole-number flag: untyped, one value required, so `--since abc` reaches
 * checkWholeNumber as given (yargs' `number` type turns it into NaN first, and the refusal could not show it).
 */
export const AS_GIVEN = { requiresArg: true } as const;

/** A whole-number flag for yargs (AS_GIVEN), checked by wholeNumberOption. */
export const wholeNumberFlag = (flag: string, rule: WholeNumberRule) => ({ ...AS_GIVEN, coerce: wholeNumberOption(flag, rule) }) as const;
