import type { CatalogDeltaPayload } from '../protocol/types.gen.js';
import { ControlClient, frameError } from '../protocol/control-client.js';
import { ServerFailures } from '../protocol/server-failures.js';
import { payloadOf, type ServerFrame } from '../protocol/envelope.js';
import { ProtocolError } from '../protocol/errors.js';
import { ReconnectLoop } from '../protocol/reconnect-loop.js';
import { CatalogElsewhere, noticeText } from '../protocol/catalog-elsewhere.js';
import { attachProject, frameCheck } from './client-connection.js';
import { SchemaError } from '../protocol/schemas.js';
import { resolveClient, tokenFile } from './client-options.js';
import { checkIdentifier, failureText } from './exit.js';

/** `control.node_service_event` as this command's watch receives it: the delta shape. */
type EventPayload = CatalogDeltaPayload & { watch_id: string; replay?: boolean };

export interface WatchArgs {
  node_id?: string | undefined;
  'replay-limit'?: number | undefined;
  since?: number | undefined;
  json: boolean;
  project?: string | undefined;
  'project-token-file'?: string | undefined;
  'control-url'?: string | readonly string[] | undefined;
  token?: string | undefined;
  'token-file'?: string | undefined;
}

const RECONNECT_FIRST_MS = 500;
const RECONNECT_MAX_MS = 10_000;
/** After a search for a server whose store answers found none, the first pause before the next (doubling up to RECONNECT_MAX_MS). */
const STORE_SEARCH_PAUSE_MS = 2_000;
/**
 * Whole rounds over every URL that fail in a row before the command gives up: before its first
 * watch (a wrong URL or a server that is not up fails fast, in about 8 s), or while every server
 * refuses a token that worked before (a rotation the file never got). Once it has watched, a server
 * out of reach is waited for as long as it takes, as a node does.
 */
const GIVE_UP_ROUNDS = 5;

/** One readable line per event: seq, time, node, kind, and the services it touched. */
export function formatEvent(e: EventPayload): string {
  const d = e.service_delta;
  const parts = [
    ...d.added.map((s) => `+${s.service_id}@${s.version}`),
    ...d.updated.map((s) => `~${s.service_id}@${s.previous_version}->${s.version}`),
    ...d.removed.map((s) => `-${s.service_id}@${s.version}`),
  ];
  return `${String(e.seq).padStart(6)} ${new Date(e.timestamp_ms).toISOString()} ${e.node_id} ${e.kind}${e.replay ? ' (replay)' : ''}${parts.length ? ' ' + parts.join(' ') : ''}`;
}

/** Why the command ends with exit code 1; its message is printed as it is. */
class WatchEnded extends Error {}

/**
 * A second line for a refused watch whose reason does not say the way out by itself: the server's
 * gate for user watches (its reason names ACHERON_NODE_SERVICE_WATCH_ALLOW_USER only while the gate
 * is closed: src/control/watch-policy.ts), or a project policy that refuses observe or read. A
 * missing session or project token is named as a flag in the reason already (flag-terms.ts).
 */
export function refusalHint(reason: string): string {
  if (reason.includes('ACHERON_NODE_SERVICE_WATCH_ALLOW_USER'))
    return '\nhint: user watches are off on this server: its operator starts acheron control with ACHERON_NODE_SERVICE_WATCH_ALLOW_USER=true (a user watch then needs --project P); admins can watch with an admin token';
  if (/^project \S+: (?:observe|read) (?:is denied|is for admins only)/.test(reason))
    return "\nhint: the project's access_policy refuses it: an admin can change it (acheron project upsert --file), or watch with an admin token";
  return '';
}

/**
 * A failure every server and every retry would give again: the command ends with this message, in
 * the words of the other client commands (docs/errors.md §2): `acheron: ` and the wire code first (a
 * bad frame, which has none: the field it got wrong, as `node list` says it).
 */
function endingMessage(error: unknown): string | undefined {
  if (error instanceof SchemaError) return `acheron: ${error.message}`;
  if (!(error instanceof ProtocolError)) return undefined;
  if (error.code === 'forbidden') return `acheron: ${failureText(error)}${refusalHint(error.message)}`;
  // A bad request fails the same way on every retry; so does a project no server of the store has (unknown, or deleted).
  if (error.code === 'unauthorized' || error.code === 'invalid_payload' || error.code === 'not_found') return `acheron: ${failureText(error)}`;
  return undefined;
}

/** Whether the session sees the node in the catalog: a watch of one it does not is silent until the node joins, which a user would take for a hang. */
async function catalogHas(client: ControlClient, nodeId: string): Promise<boolean> {
  try {
    await client.request('control.node_get', { node_id: nodeId });
    return true;
  } catch (error) {
    // Anything else (a refusal, a lost connection) is not an answer to this question.
    return !(error instanceof ProtocolError && error.code === 'not_found');
  }
}

/** How long a stop waits for the connection to close cleanly. */
const STOP_WAIT_MS = 1000;

/**
 * `acheron node watch`: the live catalog event stream, as delta events (`include: "delta"`): a line
 * per event, or with `--json` each event as received (node meta, seq, kind, timestamp_ms,
 * service_delta, and `changed_services`: the descriptors of the added and updated services).
 * Reconnects by itself (ReconnectLoop over the `--control-url` list) and resumes after the last seq
 * it printed (or the last progress head), so nothing is printed twice and nothing is skipped; a
 * watch the server ends with `resync_required` is resumed the same way at once, and a resume it
 * refuses (`resync_required`) starts over from the replay window, each said on stderr. Gives up after GIVE_UP_ROUNDS whole rounds in which no server answered before the first
 * watch, or every server refused the token after it had worked. A project that is not there (unknown
 * at the start, or deleted under the watch: the server ends it with `not_found`) ends the command
 * with exit 1 naming it, without retrying.
 */
export async function runWatchCommand(args: WatchArgs, out: NodeJS.WritableStream, err: NodeJS.WritableStream, stop: Promise<void>): Promise<number> {
  if (args.node_id !== undefined) checkIdentifier('node_id', args.node_id);
  const { urls, token } = await resolveClient(args);
  // Read again for every connection: a rotated token written into the file is used from the next one.
  const tokenPath = args['token-file'];
  const currentToken = tokenPath === undefined ? async () => token : () => tokenFile('--token-file', tokenPath).read();
  const check = await frameCheck('delta');
  /** Each URL's last failure, for the reconnect lines and the give-up line. */
  let failures = new ServerFailures();
  /** Rounds in a row that count towards giving up (GIVE_UP_ROUNDS). */
  let failedRounds = 0;
  let refusedThisRound = false;
  let since = args.since;
  let client: ControlClient | undefined;
  let everConnected = false;
  /** A failure was said on stderr since the last watch began: the next one that begins says so. */
  let gapSaid = false;
  /** The session was last attached without the refused project token (said once until the token works again). */
  let withoutProjectToken = false;

  /**
   * Attaches the project session. A project token refused after it had worked was rotated: as a
   * WorldFS mount does, the watch goes on without it, seeing what the project shows such a session,
   * and tries the file again at its next connection; where that session may not watch, the refusal
   * of the token stands (retried with the give-up rounds, the file read again each time).
   */
  const attach = async (client: ControlClient): Promise<void> => {
    try {
      await attachProject(client, args);
      withoutProjectToken = false;
    } catch (error) {
      const file = args['project-token-file'];
      if (!everConnected || file === undefined || !(error instanceof ProtocolError && error.code === 'unauthorized')) throw error;
      // Only where such a session may watch; else the token's refusal stands (an attach is granted for any one action).
      const without = await attachProject(client, { project: args.project }).catch(() => undefined);
      if (without?.actions.observe !== 'allowed') throw error;
      if (!withoutProjectToken)
        err.write(
          `acheron node watch: ${error.message} (--project-token-file ${file}): watching without it, as the project lets a session without its token; the file is read again at the next connection\n`,
        );
      withoutProjectToken = true;
    }
  };

  /**
   * One connection: the watch from `since`; 'resync' when the server says it cannot resume from
   * there, 'rewatch' when it ended the running watch (`resync_required`: the session's project
   * changed, or the watch fell behind), which is resumed after `since`: nothing printed twice.
   */
  const watchOnce = async (url: string): Promise<'resync' | 'rewatch' | 'closed'> => {
    let resync = false;
    let rewatch = false;
    /** A frame that failed the check: the command stops rather than print past it (every server would send the same). */
    let badFrame: SchemaError | undefined;
    /** An error the server pushed to end the watch for good (its project deleted): the command ends with it. */
    let ended: ProtocolError | undefined;
    /** How the server closed it, when it did: ` (4001 token revoked or rotated)`. */
    let closedHow = '';
    try {
      client = await ControlClient.connect({
        url,
        token: await currentToken(),
        check,
        onInvalidPush: (error) => {
          badFrame = error;
          client?.terminate();
        },
        onPush: (frame: ServerFrame) => {
          if (frame.ok && frame.type === 'control.node_service_event') {
            const event = payloadOf<EventPayload>(frame);
            since = event.seq;
            out.write((args.json ? JSON.stringify(event) : formatEvent(event)) + '\n');
          } else if (frame.ok && (frame.type === 'control.node_service_watch_progress' || frame.type === 'control.node_service_watch_synced')) {
            since = Math.max(since ?? 0, (frame.payload as { head_seq: number }).head_seq);
          } else if (frame.ok && frame.type === 'control.store_unavailable') {
            void elsewhere.notice(url, client as ControlClient, (frame.payload as { reason: string }).reason);
          } else if (!frame.ok && frame.error.code === 'resync_required') {
            err.write(`acheron node watch: ${frame.error.message}; watching again after seq ${since ?? 0}\n`);
            rewatch = true;
            client?.terminate();
          } else if (!frame.ok && frame.error.watch_id !== undefined) {
            ended = frameError(frame);
            client?.terminate();
          }
        },
      });
      await attach(client);
      const request: Record<string, unknown> = { include: 'delta' };
      if (args.node_id !== undefined) request.node_id = args.node_id;
      const from = since;
      if (from !== undefined) request.since_seq = from;
      else if (args['replay-limit'] !== undefined) request.replay_limit = args['replay-limit'];
      await client.request('control.node_service_watch', request);
      loop.succeeded();
      // Every loss and failed attempt was said on stderr: so is the end of the gap.
      if (everConnected || gapSaid)
        err.write(
          `acheron node watch: watching ${everConnected ? 'again ' : ''}on ${url}, ${from === undefined ? 'from the replay window' : `resumed after seq ${from}`}\n`,
        );
      if (!everConnected && args.node_id !== undefined && !(await catalogHas(client, args.node_id)))
        err.write(`acheron node watch: no node ${args.node_id} in the catalog (yet): its events are printed once it joins\n`);
      everConnected = true;
      gapSaid = false;
      elsewhere.began();
      failures = new ServerFailures();
      failedRounds = 0;
      refusedThisRound = false;
      const how = await Promise.race([client.closed, stop]);
      if (how) closedHow = ` (${how.code}${how.reason ? ` ${how.reason}` : ''})`;
      if (loop.stopped) {
        await client.close();
        return 'closed';
      }
    } catch (error) {
      if (!(error instanceof ProtocolError && error.code === 'resync_required')) throw error;
      err.write(`acheron node watch: ${error.message}; starting over from the replay window\n`);
      resync = true;
    } finally {
      if (!loop.stopped) client?.terminate();
    }
    if (badFrame) throw badFrame;
    if (ended) throw ended;
    if (resync) return 'resync';
    if (rewatch) return 'rewatch';
    // A move said so itself; the next watch says where it resumed.
    if (!elsewhere.takeMoving()) err.write(`acheron node watch: connection to ${url} lost${closedHow}; reconnecting and resuming after seq ${since ?? 0}\n`);
    return 'closed';
  };

  const loop: ReconnectLoop = new ReconnectLoop({
    urls,
    backoff: { firstMs: RECONNECT_FIRST_MS, maxMs: RECONNECT_MAX_MS },
    session: async (url) => {
      for (let outcome = await watchOnce(url); outcome !== 'closed'; outcome = await watchOnce(url)) if (outcome === 'resync') since = undefined;
    },
    failed: (url, error) => {
      elsewhere.takeMoving(); // a session cut short by its own move (mid-request) ends as a failure
      const ending = endingMessage(error);
      // A token refused after it worked was rotated: the file may get the new one (retried until the give-up rounds).
      const rotated =
        (tokenPath !== undefined || args['project-token-file'] !== undefined) &&
        everConnected &&
        error instanceof ProtocolError &&
        error.code === 'unauthorized';
      if (ending !== undefined && !rotated) throw new WatchEnded(ending);
      if (rotated) refusedThisRound = true;
      failures.note(url, error);
    },
    beforePause: (pauseMs, from) => {
      if (loop.roundFailed) {
        failedRounds = !everConnected || refusedThisRound ? failedRounds + 1 : 0;
        refusedThisRound = false;
        if (failedRounds >= GIVE_UP_ROUNDS)
          throw new WatchEnded(
            everConnected
              ? `acheron: unauthorized: the token was refused in ${GIVE_UP_ROUNDS} rounds: ${failures.list()}`
              : `acheron: unavailable: ${failures.text(GIVE_UP_ROUNDS, urls.length)}`,
          );
      }
      err.write(`acheron node watch: ${failures.of(from) ?? `${from} closed the connection`}; trying ${loop.url} in ${pauseMs} ms\n`);
      gapSaid = true;
    },
  });
  const elsewhere = new CatalogElsewhere({
    urls,
    connect: async (url, handshakeTimeoutMs) => ControlClient.connect({ url, token: await currentToken(), check, handshakeTimeoutMs }),
    loop,
    say: (notice) => err.write(`acheron node watch: ${noticeText(notice, 'no event comes until it is back')}\n`),
    backoffMs: STORE_SEARCH_PAUSE_MS,
    backoffMaxMs: RECONNECT_MAX_MS,
  });
  void stop.then(() => {
    elsewhere.stop();
    loop.stop();
  });
  try {
    const running = loop.start();
    // A stop closes a watching connection cleanly, but does not wait out a handshake (a hung server: up to 10 s).
    await Promise.race([running, stop.then(() => Promise.race([running, new Promise((resolve) => setTimeout(resolve, STOP_WAIT_MS).unref())]))]);
    return 0;
  } catch (error) {
    client?.terminate();
    if (!(error instanceof WatchEnded)) throw error;
    err.write(`${error.message}\n`);
    return 1;
  }
}
