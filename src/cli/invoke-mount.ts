import { access, open, readFile, stat } from 'node:fs/promises';
import { dirname, join, relative } from 'node:path';
import { mountedOn, worldNodesDir } from '../world/mount-source.js';
import type { InvokeArgs, Refused } from './invoke-command.js';
import { staleMountMeaning, staleMountText } from './stale-mount.js';
import { systemErrorText } from '../errors/errno.js';

// acheron invoke through a mount: the node tree's, or WorldFS's with --node, and what its errno means.

/**
 * The directory whose `services/` holds the service: the node tree's root, or WorldFS's node
 * directory, `<mount>/nodes/<node>` or, on a `--subtree nodes` mount, `<mount>/<node>` (the mount
 * table tells which: src/world/mount-source.ts).
 */
export async function servicesParent(node: string | undefined, mount: string): Promise<string> {
  return node === undefined ? mount : join(await worldNodesDir(mount), node);
}

/** The node tree's `services/<id>`, or WorldFS's `nodes/<node>/services/<id>`: its outcome, or the errno and why (mountRefusal). */
export async function invokeThroughMount(args: InvokeArgs, mount: string, under: string, payload: string): Promise<Buffer | Refused> {
  const dir = join(under, 'services', args.service);
  /** The payload was written and its read began: from then on the invocation may have been sent. */
  let committing = false;
  // On WorldFS: a node offline already is refused before anything is sent (SPEC §9), an EHOSTUNREACH then says nothing of a run.
  const before = args.node === undefined ? undefined : await nodeStatus(under);
  try {
    const file = await open(join(dir, 'control', 'invoke.json'), 'r+');
    let outcome: Buffer;
    try {
      await file.write(payload, 0);
      committing = true;
      outcome = await file.readFile();
    } catch (error) {
      // The commit's errno says what happened; the close's after it (ESTALE once the link went) would hide it.
      await file.close().catch(() => undefined);
      throw error;
    }
    await file.close();
    return outcome;
  } catch (error) {
    const errno = (error as NodeJS.ErrnoException).code ?? 'ERROR';
    const recorded = (): Promise<string> => readFile(join(dir, 'last_error.txt'), 'utf8').catch(() => '');
    // Offline throughout: the same offline record before and after (a node that came back meanwhile may have run it).
    const after = before?.state === 'offline' && errno === 'EHOSTUNREACH' ? await nodeStatus(under) : undefined;
    const offlineBefore = after?.state === 'offline' && after.updated_ms === before?.updated_ms;
    return mountRefusal(errno, (error as Error).message, { service: args.service, under, mount, node: args.node, committing, offlineBefore }, recorded);
  }
}

/** A WorldFS node's STATUS.json (`state`, and `updated_ms`: when that record was written), or undefined when it cannot be read. */
async function nodeStatus(under: string): Promise<{ state?: string; updated_ms?: number } | undefined> {
  const text = await readFile(join(under, 'STATUS.json'), 'utf8').catch(() => undefined);
  try {
    return text === undefined ? undefined : (JSON.parse(text) as { state?: string; updated_ms?: number });
  } catch {
    return undefined;
  }
}

/** Where an invocation through a mount went: the mount, and the directory the service was looked up in (`nodes/<node>` on WorldFS). */
export interface MountPlace {
  service: string;
  mount: string;
  under: string;
  node: string | undefined;
  /** The error came at the commit (the read after the write), not at the open or the write. */
  committing?: boolean;
  /** WorldFS: the node's STATUS.json said `offline` before the invocation began and still says it, unchanged, after it failed. */
  offlineBefore?: boolean;
}

/**
 * Why the mount refused the transaction with `errno`, in words, without the errno (the line names
 * it once): what it means where that is known (no service; on WorldFS, whose reasons do not cross
 * FUSE and whose live files are then out of reach too, a node offline or the control server lost);
 * else last_error.txt's line of that errno (`recorded`, read only then); else the system error's
 * description without its errno and syscall.
 */
export async function mountRefusal(errno: string, message: string, place: MountPlace, recorded: () => Promise<string>): Promise<Refused> {
  const known =
    errno === 'ENOENT' || errno === 'ENOTDIR'
      ? await whatIsMissing(place)
      : place.node === undefined
        ? nodeErrnoMeaning(errno, place)
        : await worldErrnoMeaning(errno, place);
  const fallback =
    (place.node === undefined ? unrecordedMeaning(errno, place.mount) : await worldUnrecordedMeaning(errno, place)) ?? systemErrorText(errno, message);
  return { errno, detail: known ?? errorDetail(await recorded(), errno, fallback) };
}

/**
 * What the node tree means by an errno it answers without recording why in last_error.txt: EAGAIN
 * is recorded for a cooldown and a full queue, not for a node that is stopping (a refusal of the
 * node, not of the service), so an unrecorded one is that.
 */
function unrecordedMeaning(errno: string, mount: string): string | undefined {
  if (errno === 'EAGAIN') return `the node serving ${mount} is shutting down and takes no new invocations: try again once it runs`;
  return undefined;
}

/**
 * What WorldFS means by an EACCES the node did not record: the control server refused the relayed
 * invoke to the mount's principal (the project's `invoke` action, a project token it needs), and
 * only the mount's log has the reason. Not when the kernel refused the caller (a mount shared with
 * allow_other and default_permissions: invoke.json is the daemon's user's) or the mount itself.
 */
async function worldUnrecordedMeaning(errno: string, place: MountPlace): Promise<string | undefined> {
  if (errno !== 'EACCES') return undefined;
  const owner = await stat(join(place.under, 'services', place.service, 'control', 'invoke.json')).then(
    (found) => found.uid,
    () => undefined,
  );
  const uid = process.getuid?.();
  if (owner === undefined || (uid !== 0 && owner !== uid)) return undefined;
  return `the control server refused it to the token or project session of ${place.mount}: the mount's log says why ("relayed operation refused")`;
}

/**
 * ENOENT (ENOTDIR: a path through a file): the service, on WorldFS the node (not in the catalog, or hidden from the mount's token), or
 * the mount itself: a directory nothing is mounted on has no NODE.json, no node directories ("is it
 * running?"); another file system there is named from the mount table.
 */
async function whatIsMissing(place: MountPlace): Promise<string> {
  const [root, kind] = place.node === undefined ? [join(place.mount, 'NODE.json'), 'node mount'] : [dirname(place.under), 'WorldFS mount'];
  const there = (path: string): Promise<boolean> =>
    access(path).then(
      () => true,
      () => false,
    );
  if (!(await there(root))) {
    if (
      await stat(place.mount).then(
        (found) => !found.isDirectory(),
        () => false,
      )
    )
      return `${place.mount} is not a directory: --mount names where ${kind === 'node mount' ? 'the node tree' : 'WorldFS'} is mounted`;
    const other = await mountedOn(place.mount);
    const what = `${place.mount} is not an acheron ${kind} (no ${relative(place.mount, root)})`;
    return other ? `${what}: ${other.source} (${other.fstype}) is mounted there` : `${what}: is it running?`;
  }
  if (place.node !== undefined && !(await there(place.under)))
    return `no node ${place.node} under ${dirname(place.under)} (not in the catalog, or hidden from this mount's token)`;
  // At the commit the service was there when it was opened. The node tree answers ENOENT there for
  // one thing (docs/node-tree.md): a reload removed it and cancelled the run. On WorldFS it may be
  // hidden from the session instead, or gone after the run (its outcome read back): it may have run.
  if (place.committing && place.node !== undefined)
    return `service ${place.service} is gone from ${place.under} (removed on the node, or hidden from this mount's session): the invocation may have run; check on the node before invoking again`;
  if (place.committing) return `service ${place.service} was removed (a manifest reload) while this invocation ran or waited: it was cancelled`;
  return `no service ${place.service} under ${place.under}`;
}

/**
 * ECONNABORTED: the daemon behind the mount ended while it held this operation (killed, or the mount
 * forced off); ENOTCONN after it. At the commit the invocation may have run: said, with where to look.
 */
function abortedText(place: MountPlace, daemon: string): string {
  const jobs = `${join(place.under, 'services', place.service, 'jobs')}/`;
  const outcome = place.committing
    ? `the invocation may have run: once it serves again, see ${jobs} (a run the node did not finish shows as interrupted) before invoking again`
    : 'the invocation was not sent';
  return `${daemon} serving ${place.mount} stopped during this invocation (killed, or its mount forced off); ${outcome}`;
}

/** What the node tree means by `errno`, where it is one thing. */
function nodeErrnoMeaning(errno: string, place: MountPlace): string | undefined {
  if (errno === 'ENOTCONN') return staleMountText(place.mount, 'start the node again');
  if (errno === 'ECONNABORTED') return abortedText(place, 'the node daemon');
  // Not recorded in last_error.txt: the invocation has not ended.
  if (errno === 'ETIMEDOUT')
    return `no outcome within the writer's bound (the queue, timeout_ms and kill_grace_ms); the invocation may still end: see ${join(place.under, 'services', place.service, 'jobs')}/`;
  return undefined;
}

/**
 * What WorldFS means by `errno` for node `node` (src/world/world-catalog.ts `relay`, src/control/relay-hub.ts), where it is one thing.
 * A link lost at the commit may have been lost after the invoke reached the node: said, so that a script does not invoke twice.
 */
async function worldErrnoMeaning(errno: string, place: MountPlace): Promise<string | undefined> {
  const unknown = place.committing
    ? `; the invocation may have run before the link was lost: see ${join(place.under, 'services', place.service, 'jobs')}/ once it is back, before invoking again`
    : '';
  if (errno === 'ECONNABORTED') return abortedText(place, 'WorldFS');
  if (errno === 'EHOSTUNREACH')
    return place.offlineBefore
      ? `node ${place.node} was offline before this invocation (its STATUS.json): the invocation was not sent`
      : `node ${place.node} is offline or not connected to the control server${unknown}`;
  if (errno === 'ENOTCONN') {
    const stale = await staleMountMeaning(place.mount, 'start acheron world again');
    // Not only a lost server: a token or project the server refuses (rotated, revoked) answers ENOTCONN too.
    return (
      stale ??
      `WorldFS at ${place.mount} has no working session with its control server (out of reach, or its token or project refused: its log says which); it tries again by itself, reading its token files again each time${unknown}`
    );
  }
  return undefined;
}

/**
 * The first line of `recorded` (last_error.txt) without its errno prefix (the caller names the
 * errno once), when it is this errno's; else `fallback`. Not every failure is recorded there (a
 * wait bound's ETIMEDOUT, a journal's ENOSPC): an earlier, unrelated error must not pass for it.
 */
export function errorDetail(recorded: string, code: string, fallback: string): string {
  const line = recorded.trim().split('\n')[0] ?? '';
  return line.startsWith(`${code}: `) ? line.slice(code.length + 2) || fallback : fallback;
}
