// Service actions through the relay (the policy WorldFS has: a user needs the project's `invoke`
// action and a service whose permissions admit the session). Destructive ones ask first. Every
// action lands in the action log with its outcome: done, or refused with the errno and reason.
import { $, clock, el, reason, show } from './dom.js';
import { writeText } from './relay.js';

/** The control files (docs/node-tree.md) and, for the destructive ones, what the confirmation says. */
const CONTROLS = {
  enable: { confirm: null },
  disable: { confirm: 'Disable it? New invocations are refused (EPERM) until it is enabled again; running ones finish.' },
  restart: { confirm: 'Restart it? The last error and cooldown are cleared; a persistent driver is stopped and its in-flight requests fail.' },
  reset: { confirm: 'Reset it? result.json goes back to idle, last_error.txt is emptied and the consecutive counters are zeroed.' },
};

const MAX_LOG = 20;

/** Asks in the page's own dialog; resolves true when confirmed. */
function confirmAction(title, message) {
  const dialog = $('confirm');
  $('confirm-title').textContent = title;
  $('confirm-message').textContent = message;
  return new Promise((resolve) => {
    const done = (answer) => {
      dialog.close();
      $('confirm-ok').onclick = null;
      $('confirm-cancel').onclick = null;
      resolve(answer);
    };
    $('confirm-ok').onclick = () => done(true);
    $('confirm-cancel').onclick = () => done(false);
    dialog.oncancel = () => done(false);
    dialog.showModal();
  });
}

/**
 * Runs `task` as one logged action: a pending line, then `done` (with what `task` returns to say) or
 * `refused` with the code and reason. Resolves with `{ok, value | error}`.
 */
export async function logged(action, target, task) {
  const line = el(
    'li',
    { class: 'action', 'data-action': action, 'data-target': target, 'data-outcome': 'pending' },
    `${clock(Date.now())} ${action} ${target}: …`,
  );
  const log = $('action-log-list');
  log.prepend(line);
  while (log.children.length > MAX_LOG) log.lastElementChild.remove();
  show($('action-log'), true);
  try {
    const value = await task();
    line.dataset.outcome = 'done';
    line.textContent = `${clock(Date.now())} ${action} ${target}: done${typeof value === 'string' && value ? ` (${value})` : ''}`;
    return { ok: true, value };
  } catch (error) {
    line.dataset.outcome = 'refused';
    line.textContent = `${clock(Date.now())} ${action} ${target}: refused: ${reason(error)}`;
    return { ok: false, error };
  }
}

/** Writes a control file of a service, after a confirmation for the destructive ones. */
async function runControl(nodeId, serviceId, control) {
  const target = `${nodeId}/${serviceId}`;
  const question = CONTROLS[control].confirm;
  if (question && !(await confirmAction(`${control} ${target}`, question))) return { ok: false, cancelled: true };
  return logged(control, target, () => writeText(nodeId, `/services/${serviceId}/control/${control}`, '\n'));
}

/** The buttons of a service's controls; those that would change nothing are disabled. */
export function controlButtons(nodeId, serviceId, state) {
  return Object.keys(CONTROLS).map((control) =>
    el(
      'button',
      {
        type: 'button',
        class: `control ${CONTROLS[control].confirm ? 'destructive' : ''}`,
        'data-control': control,
        disabled: (control === 'enable' && state !== 'disabled') || (control === 'disable' && state === 'disabled'),
        onclick: () => void runControl(nodeId, serviceId, control),
      },
      control,
    ),
  );
}
