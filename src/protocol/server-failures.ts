/** How a server's refusal of the connection begins (ControlClient.connect): told apart from silence. */
export const REFUSED = 'control server refused the connection: ';

/**
 * Why each server of a `--control-url` list failed to connect, and the one line that says it once
 * the client gives up: connectAny (the one-shot commands) and WorldFS's first connection say it alike.
 */
export class ServerFailures {
  readonly #given = new Map<string, string>();

  /** The last failure of `url` (a server's or the network's: ProtocolError, SchemaError). */
  note(url: string, error: unknown): void {
    this.#given.set(url, (error as Error).message);
  }

  /** The last failure of `url`, as its error said it. */
  of(url: string): string | undefined {
    return this.#given.get(url);
  }

  /** Each server's last failure, as its error said it: `<url>: <message>; …`. */
  list(): string {
    return [...this.#given].map(([url, why]) => `${url}: ${why}`).join('; ');
  }

  /**
   * Why the client gave up after `rounds` rounds. Servers that answered the upgrade with a refusal
   * (a 503: the store could not check the token) did answer: said so first with their status and
   * reason, not as silence.
   */
  text(rounds: number, urlCount: number): string {
    const why = [...this.#given].map(([url, message]) => [url, message.replace(`cannot reach the control server at ${url}: `, '')] as const);
    const refused = why.filter(([, reason]) => reason.startsWith(REFUSED)).length;
    const lead =
      refused === 0
        ? 'no control server answered'
        : refused < why.length
          ? 'no control server took the connection'
          : urlCount === 1
            ? 'the control server refused the connection'
            : 'every control server refused the connection';
    const each = why.map(([url, reason]) => `${url}: ${refused === why.length ? reason.slice(REFUSED.length) : reason}`);
    return `${lead} (${rounds} round${rounds === 1 ? '' : 's'} over ${urlCount} URL${urlCount === 1 ? '' : 's'}): ${each.join('; ')}`;
  }
}
