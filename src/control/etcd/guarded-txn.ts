import { randomUUID } from 'node:crypto';
import { constants, gunzipSync, gzipSync } from 'node:zlib';
import type { ComparatorBuilder, Etcd3 } from 'etcd3';
import { ProtocolError } from '../../protocol/errors.js';
import type { EtcdConnection } from './connection.js';

/** The field of every value Acheron writes to etcd that names the write that made it. */
export const OP_ID_FIELD = 'op_id';

/** A key that must still be at `modRevision` (0n: must not exist) for the writes to happen. */
export interface Guard {
  key: string;
  modRevision: bigint;
}

/**
 * A JSON object to put (it gets the op id), a value the caller encodes with the op id and its
 * place in the transaction (large values built from parts: node records; `GroupCommit`), or a delete.
 */
export type Write =
  { key: string; value: Record<string, unknown> } | { key: string; encoded: (opId: string, index: number) => Buffer } | { key: string; delete: true };

/** A write as it goes to etcd: the value encoded, or a delete. */
export type EncodedWrite = { key: string; value: Buffer | string } | { key: string; delete: true };

/** The writes of one change as etcd gets them: each value with the op id and the change's place in its transaction. */
export function encodeWrites(writes: readonly Write[], opId: string, index: number): EncodedWrite[] {
  return writes.map((w) => {
    if ('delete' in w) return w;
    return { key: w.key, value: 'encoded' in w ? w.encoded(opId, index) : JSON.stringify({ ...w.value, [OP_ID_FIELD]: opId }) };
  });
}

/** The transaction: `writes` if every guard holds (no else branch yet). A thenable builder: finish it with `.commit()`. */
export function guardedTxn(client: Etcd3, guards: readonly Guard[], writes: readonly EncodedWrite[]): ComparatorBuilder {
  const [first, ...rest] = guards;
  if (!first) throw new TypeError('a guarded transaction needs at least one guard');
  let txn = client.if(first.key, 'Mod', '==', String(first.modRevision));
  for (const guard of rest) txn = txn.and(guard.key, 'Mod', '==', String(guard.modRevision));
  return txn.then(...writes.map((w) => ('delete' in w ? client.delete().key(w.key) : client.put(w.key).value(w.value))));
}

/** gzip's magic bytes: a value that starts with them is a gzipped JSON object, any other is JSON text. */
const GZIP_MAGIC = Buffer.from([0x1f, 0x8b]);

/**
 * A large value (a node record: its whole catalog) as etcd keeps it: gzipped. etcd's cost per
 * write grows with the bytes (raft log, WAL, every member, every watch), and catalogs are
 * repetitive JSON (a 22 KiB record of 20 descriptors becomes about 2 KiB). `etcdctl get` shows it
 * through `gunzip`.
 */
export function gzipValue(parts: readonly Buffer[]): Buffer {
  return gzipSync(Buffer.concat(parts), { level: constants.Z_BEST_SPEED });
}

/** Read attempts before a transaction gives up with `conflict`. */
const MAX_ATTEMPTS = 16;

/** A stored value (JSON text, or gzipped JSON: `gzipValue`) as a JSON object, its op id apart; undefined when it is not a JSON object. */
export function storedObject(value: Buffer): { object: Record<string, unknown>; opId: string | undefined } | undefined {
  let parsed: unknown;
  try {
    parsed = JSON.parse((value.subarray(0, GZIP_MAGIC.length).equals(GZIP_MAGIC) ? gunzipSync(value) : value).toString('utf8'));
  } catch {
    return undefined;
  }
  if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) return undefined;
  const { [OP_ID_FIELD]: opId, ...object } = parsed as Record<string, unknown>;
  return { object, opId: typeof opId === 'string' ? opId : undefined };
}

/**
 * One etcd transaction: `writes` happen, all in one revision, if every guard holds. etcd3 retries
 * a txn that timed out, and its first attempt may have committed: the retry then fails its guard
 * and reports `succeeded: false`. So every value carries `opId`, and on a failed guard the first
 * put's key is read back: holding our op id, the transaction did commit. (Were that key written
 * again meanwhile, the commit looks like a conflict; callers re-read and re-plan, see `transact`.)
 */
export function commitGuarded(
  connection: EtcdConnection,
  what: string,
  guards: readonly Guard[],
  writes: readonly Write[],
  opId: string = randomUUID(),
): Promise<{ committed: boolean; revision: bigint; changedAt?: bigint }> {
  return commitEncoded(connection, what, guards, encodeWrites(writes, opId, 0), opId);
}

/** `commitGuarded` of writes already encoded with `opId`. */
export async function commitEncoded(
  connection: EtcdConnection,
  what: string,
  guards: readonly Guard[],
  writes: readonly EncodedWrite[],
  opId: string,
): Promise<{ committed: boolean; revision: bigint; changedAt?: bigint }> {
  if (guards.length === 0) throw new TypeError(`${what}: a guarded transaction needs at least one guard`);
  return connection.write(what, async (client) => {
    // On a failed guard: each guarded key as it is now, to know how far a mirror must be to see why.
    const result = await guardedTxn(client, guards, writes)
      .else(...guards.map((g) => client.get(g.key)))
      .commit();
    if (result.succeeded) return { committed: true, revision: BigInt(result.header.revision) };
    const marker = writes.find((w) => !('delete' in w));
    if (marker) {
      const kv = (await client.get(marker.key).exec()).kvs[0];
      if (kv && storedObject(kv.value)?.opId === opId) return { committed: true, revision: BigInt(kv.mod_revision) };
    }
    // A guarded key still there changed at its mod_revision; one gone was deleted at some revision up to the header's.
    let changedAt = 0n;
    guards.forEach((guard, index) => {
      const kv = result.responses[index]?.response_range?.kvs[0];
      const at = kv ? BigInt(kv.mod_revision) : guard.modRevision === 0n ? 0n : BigInt(result.header.revision);
      if (at > changedAt) changedAt = at;
    });
    return { committed: false, revision: BigInt(result.header.revision), changedAt };
  });
}

/** Reads a key inside `transact`: the value, or undefined when absent; the read becomes a guard. */
export type TxnRead = (key: string) => Promise<Buffer | undefined>;

/** What one attempt of a transaction decided: its writes (none: nothing to do) and its answer. */
export interface TxnPlan<R> {
  writes: Write[];
  result: R;
}

/**
 * A read-modify-write that never loses a concurrent update: `plan` reads keys (each read is a
 * linearizable get and becomes a guard on that key's mod_revision), then says what to write; the
 * writes commit only if no key read has changed, else `plan` runs again on fresh reads. `attempt`
 * counts from 0: on a later attempt a plan may find its own earlier write (a delete that committed
 * although its answer was lost) and should treat that as done. Gives up with `conflict` after
 * MAX_ATTEMPTS; an etcd failure is `unavailable`. `revision` is the commit's (0n: nothing written).
 */
export async function transact<R>(
  connection: EtcdConnection,
  what: string,
  plan: (read: TxnRead, attempt: number) => Promise<TxnPlan<R>>,
): Promise<{ result: R; revision: bigint }> {
  for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
    const guards = new Map<string, bigint>();
    const read: TxnRead = async (key) => {
      const kv = (await connection.read(what, (client) => client.get(key).exec())).kvs[0];
      if (!guards.has(key)) guards.set(key, kv ? BigInt(kv.mod_revision) : 0n);
      return kv?.value;
    };
    const { writes, result } = await plan(read, attempt);
    if (writes.length === 0) return { result, revision: 0n };
    const outcome = await commitGuarded(
      connection,
      what,
      [...guards].map(([key, modRevision]) => ({ key, modRevision })),
      writes,
    );
    if (outcome.committed) return { result, revision: outcome.revision };
    // Contenders that collided once would likely collide again in lockstep: a short random pause.
    await new Promise((resolve) => setTimeout(resolve, Math.random() * 10 * (attempt + 1)));
  }
  throw new ProtocolError('conflict', `${what}: the data changed under it ${MAX_ATTEMPTS} times in a row; try again`);
}
