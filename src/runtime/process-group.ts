/** Signals a driver's whole process group (drivers run detached, as group leaders). */
export function signalGroup(pid: number | undefined, signal: NodeJS.Signals): void {
  if (pid === undefined) return;
  try {
    process.kill(-pid, signal);
  } catch {
    // ESRCH: the group is already gone, which is what we wanted.
  }
}

/** SIGTERM now, SIGKILL after the grace period: how every driver group is stopped. */
export function terminateGroup(pid: number | undefined, graceMs: number): NodeJS.Timeout {
  signalGroup(pid, 'SIGTERM');
  const timer = setTimeout(() => signalGroup(pid, 'SIGKILL'), graceMs);
  timer.unref();
  return timer;
}
