import type { Socket } from 'node:net';

/** What corking needs of a peer's TCP (or TLS) socket, and what the fan-out writes to it. */
export type Transport = Pick<Socket, 'cork' | 'uncork' | 'write'>;

/** The sockets corked in this tick: one nextTick uncorks them all (a fan-out corks a hundred). */
const corked = new Set<Transport>();

function uncorkAll(): void {
  const batch = [...corked];
  corked.clear();
  for (const transport of batch) transport.uncork();
}

/**
 * The events of one group commit are fanned out in one synchronous run: held in the socket until
 * it ends, they leave in one writev per peer instead of one per frame (the syscalls are most of a
 * fan-out's cost).
 */
export function corkUntilNextTick(transport: Transport): void {
  if (corked.has(transport)) return;
  if (corked.size === 0) process.nextTick(uncorkAll);
  corked.add(transport);
  transport.cork();
}
