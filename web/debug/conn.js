// The console's one WebSocket to the control server (SPEC §10): authenticated by the subprotocol
// `acheron.bearer.<base64url token>`, `control.version` first, then the project session when one is
// remembered. Requests are matched by id; watch pushes go to the handlers of their watch_id. A
// connection that drops after it was up is opened again with a growing pause, and every module
// that listens for `ready` sets itself up again (the watches resume with since_seq).
import { $, el, show } from './dom.js';

const PROTOCOL = 'unified-v2';
const BEARER_PREFIX = 'acheron.bearer.';
const TOKEN_KEY = 'acheron.debug.token';
const WS_URL_KEY = 'acheron.debug.ws_url';
const PROJECT_KEY = 'acheron.debug.project';
/** Pauses between reconnect attempts: doubling up to the last. */
const RECONNECT_MS = [250, 500, 1000, 2000, 3000];

export const conn = {
  socket: null,
  defaultUrl: '',
  /** `admin` or `user` once connected. */
  principal: null,
  /** The session_attach reply of the project session, or null. */
  attach: null,
  /** Why the remembered project could not be attached at the last connect, or null. */
  attachError: null,
  /** Whether a connection was up since the token was given: then a drop reconnects. */
  wasUp: false,
  attempts: 0,
};

let nextId = 1;
/** Request id → {resolve, reject, onReply}. */
const pending = new Map();
/** watch_id → {event, synced, progress, ended}. */
const watches = new Map();
const listeners = { ready: [], down: [] };

/** `ready(reconnected)` after version and attach; `down(why)` when the connection is lost. */
export function on(name, listener) {
  listeners[name].push(listener);
}

function emit(name, ...args) {
  for (const listener of listeners[name]) {
    try {
      listener(...args);
    } catch (error) {
      console.error(error);
    }
  }
}

function base64url(text) {
  let binary = '';
  for (const byte of new TextEncoder().encode(text)) binary += String.fromCharCode(byte);
  return btoa(binary).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
}

function setStatus(kind, text) {
  const status = $('conn-status');
  status.dataset.state = kind;
  status.textContent = text;
}

function send(type, payload, entry) {
  const socket = conn.socket;
  if (!socket || socket.readyState !== WebSocket.OPEN) return Promise.reject(Object.assign(new Error('not connected'), { code: 'unavailable' }));
  const id = `d${nextId++}`;
  return new Promise((resolve, reject) => {
    pending.set(id, { resolve, reject, ...entry });
    socket.send(JSON.stringify({ channel: 'control', type, id, payload }));
  });
}

/** One request; resolves with the reply payload, rejects with an Error carrying `code` and `field`. */
export function request(type, payload = {}) {
  return send(type, payload, {});
}

/**
 * `control.node_service_watch`: the handlers get this watch's pushes from the frame right after the
 * ack on (registered when the ack arrives, before any later frame is read). Resolves with the ack.
 */
export function watch(payload, handlers) {
  return send('control.node_service_watch', payload, { onReply: (ack) => watches.set(ack.watch_id, handlers) });
}

/** Ends a watch; its frames still on the way are dropped. */
export function unwatch(watchId) {
  watches.delete(watchId);
  return request('control.node_service_unwatch', { watch_id: watchId });
}

function wireError(error) {
  return Object.assign(new Error(error?.message ?? 'error'), { code: error?.code ?? 'unknown', field: error?.field });
}

// ---- project session -------------------------------------------------------------------------

/** The remembered project `{project_id, project_token?}` (per browser tab), or null. */
function rememberedProject() {
  try {
    return JSON.parse(sessionStorage.getItem(PROJECT_KEY) ?? 'null');
  } catch {
    return null;
  }
}

/** Attaches a project session and remembers it for reconnects and reloads; rejects with the refusal. */
export async function attachProject(projectId, projectToken) {
  const payload = { project_id: projectId };
  if (projectToken) payload.project_token = projectToken;
  try {
    conn.attach = await request('control.session_attach', payload);
  } catch (error) {
    conn.attach = null;
    throw error;
  }
  conn.attachError = null;
  sessionStorage.setItem(PROJECT_KEY, JSON.stringify(payload));
  return conn.attach;
}

// ---- connecting ------------------------------------------------------------------------------

function showLogin(message) {
  show($('login'), true);
  show($('app'), conn.principal !== null);
  $('ws-url').value = sessionStorage.getItem(WS_URL_KEY) || conn.defaultUrl;
  const project = rememberedProject();
  $('login-project').value = project?.project_id ?? '';
  const error = $('login-error');
  error.textContent = message ?? '';
  show(error, Boolean(message));
  $('token').focus();
}

function connect() {
  const token = sessionStorage.getItem(TOKEN_KEY);
  if (!token) return showLogin();
  const url = sessionStorage.getItem(WS_URL_KEY) || conn.defaultUrl;
  if (!url) return showLogin('No control URL: /debug/config.json did not answer; type ws://host:port.');
  setStatus('connecting', conn.wasUp ? `reconnecting to ${url} (attempt ${conn.attempts})` : `connecting to ${url}`);
  let socket;
  try {
    socket = new WebSocket(url, [BEARER_PREFIX + base64url(token)]);
  } catch (error) {
    setStatus('error', 'not connected');
    return showLogin(`${url}: ${error.message}`);
  }
  conn.socket = socket;
  let opened = false;
  socket.addEventListener('open', async () => {
    opened = true;
    try {
      const version = await request('control.version', { protocol: PROTOCOL });
      conn.principal = version.principal;
      const project = rememberedProject();
      if (project) {
        try {
          await attachProject(project.project_id, project.project_token);
        } catch (error) {
          conn.attachError = error;
        }
      }
      const reconnected = conn.wasUp;
      conn.wasUp = true;
      conn.attempts = 0;
      setStatus('connected', `connected to ${url}`);
      $('principal').textContent = `as ${version.principal} · server ${version.server_version}${conn.attach ? ` · project ${conn.attach.project_id}` : ''}`;
      show($('login'), false);
      show($('app'), true);
      show($('forget-token'), true);
      emit('ready', reconnected);
    } catch (error) {
      setStatus('error', `control.version failed: ${error.code}: ${error.message}`);
    }
  });
  socket.addEventListener('message', (message) => onFrame(message.data));
  socket.addEventListener('close', (close) => {
    if (conn.socket !== socket) return;
    dropConnection('connection closed');
    if (close.code === 4001) {
      setStatus('error', 'token revoked');
      return showLogin('The token was revoked or rotated: enter the new one.');
    }
    if (!opened && !conn.wasUp) {
      setStatus('error', 'refused');
      // The browser hides the HTTP status of a refused upgrade: name both causes.
      return showLogin(
        `The server refused the connection to ${url}: a wrong or revoked token (HTTP 401), or a page from another host than the control server (HTTP 403, Origin check).`,
      );
    }
    // It was up: the server restarted or the network dropped. Try again, pausing longer each time.
    const pause = RECONNECT_MS[Math.min(conn.attempts, RECONNECT_MS.length - 1)];
    conn.attempts += 1;
    setStatus('closed', `closed (${close.code}${close.reason ? ` ${close.reason}` : ''}): reconnecting in ${pause / 1000} s`);
    setTimeout(() => {
      if (!conn.socket && sessionStorage.getItem(TOKEN_KEY)) connect();
    }, pause);
  });
}

/** Forgets the socket: pending requests fail, live watches end (their frames are ignored from now on). */
function dropConnection(why) {
  conn.socket = null;
  conn.attach = null;
  for (const entry of pending.values()) entry.reject(Object.assign(new Error(why), { code: 'unavailable' }));
  pending.clear();
  const ended = [...watches.values()];
  watches.clear();
  for (const handlers of ended) handlers.ended?.({ code: 'unavailable', message: why }, true);
  emit('down', why);
}

function onFrame(text) {
  let frame;
  try {
    frame = JSON.parse(text);
  } catch {
    return;
  }
  const entry = frame.id == null ? undefined : pending.get(frame.id);
  if (entry) {
    pending.delete(frame.id);
    if (frame.ok) {
      entry.onReply?.(frame.payload);
      entry.resolve(frame.payload);
    } else entry.reject(wireError(frame.error));
    return;
  }
  const payload = frame.payload ?? {};
  switch (frame.type) {
    case 'control.node_service_event':
      watches.get(payload.watch_id)?.event?.(payload);
      break;
    case 'control.node_service_watch_synced':
      watches.get(payload.watch_id)?.synced?.(payload);
      break;
    case 'control.node_service_watch_progress':
      watches.get(payload.watch_id)?.progress?.(payload);
      break;
    case 'control.error': {
      // A push error naming a watch ends it (resync_required for a watcher too slow).
      const handlers = watches.get(frame.error?.watch_id);
      if (handlers) {
        watches.delete(frame.error.watch_id);
        handlers.ended?.(wireError(frame.error), false);
      }
      break;
    }
  }
}

/** Reads where the ws listener is, wires the login form and Forget token, and connects. */
export async function startConnection() {
  const scheme = location.protocol === 'https:' ? 'wss' : 'ws';
  try {
    const config = await (await fetch('/debug/config.json', { cache: 'no-store' })).json();
    conn.defaultUrl = `${scheme}://${location.hostname}:${config.ws_port}`;
  } catch {
    conn.defaultUrl = '';
  }
  $('login-form').addEventListener('submit', (submit) => {
    submit.preventDefault();
    sessionStorage.setItem(TOKEN_KEY, $('token').value.trim());
    const url = $('ws-url').value.trim();
    if (url && url !== conn.defaultUrl) sessionStorage.setItem(WS_URL_KEY, url);
    else sessionStorage.removeItem(WS_URL_KEY);
    const projectId = $('login-project').value.trim();
    const projectToken = $('login-project-token').value;
    if (projectId) sessionStorage.setItem(PROJECT_KEY, JSON.stringify({ project_id: projectId, ...(projectToken ? { project_token: projectToken } : {}) }));
    else sessionStorage.removeItem(PROJECT_KEY);
    $('token').value = '';
    $('login-project-token').value = '';
    conn.wasUp = false;
    connect();
  });
  $('forget-token').addEventListener('click', () => {
    sessionStorage.removeItem(TOKEN_KEY);
    sessionStorage.removeItem(PROJECT_KEY);
    conn.principal = null;
    const socket = conn.socket;
    conn.wasUp = false;
    dropConnection('disconnected');
    socket?.close(1000);
    setStatus('idle', 'not connected');
    $('principal').textContent = '';
    show($('forget-token'), false);
    show($('app'), false);
    showLogin();
  });
  connect();
}

/** Shown where a list of nodes would be when the session may not read them. */
export function projectHint() {
  if (conn.principal !== 'user') return null;
  if (conn.attachError)
    return el('p', { class: 'error attach-error' }, `Project ${rememberedProject()?.project_id ?? ''}: ${conn.attachError.code}: ${conn.attachError.message}`);
  if (!conn.attach)
    return el(
      'p',
      { class: 'hint' },
      'A user token sees nodes through a project session: attach one under Project scope (or name the project on the token form).',
    );
  return null;
}
