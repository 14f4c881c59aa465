// Number formatting and verdicts shared by the results renderers.

/** Microseconds as µs or ms; '—' for a value not measured (a part of the results from an older run). */
export const time = (us) => (!Number.isFinite(us) ? '—' : us < 0 ? `−${time(-us)}` : us >= 1000 ? `${(us / 1000).toFixed(2)} ms` : `${Math.round(us)} µs`);
export const ratio = (r) => `${r.toFixed(2)}×`;
export const mib = (kib) => `${(kib / 1024).toFixed(1)} MiB`;
export const rate = (perSecond) => `${Math.round(perSecond).toLocaleString('en-US')}/s`;
/** A target that is a ceiling: FAIL says by how much the measurement is over it. */
export const verdict = (ok, measured, target) => (ok ? 'PASS' : `FAIL (${Math.round((measured / target - 1) * 100)} % over)`);
/** A target that is a floor: FAIL says by how much the measurement is under it. */
export const verdictMin = (ok, measured, target) => (ok ? 'PASS' : `FAIL (${Math.round((1 - measured / target) * 100)} % under)`);
/** With `--only`: when and how a part was measured (this run or an earlier one); else ''. */
export function ranNote(name, part, env) {
  if (!env.only) return '';
  if (!part.ran) return ' Measured in an earlier run.';
  const date = part.ran.date.replace('T', ' ').replace(/\.\d+Z$/, ' UTC');
  const load = `load average ${part.ran.loadStart.toFixed(2)} at its start, ${part.ran.loadEnd.toFixed(2)} at its end${part.ran.quick ? ', `--quick`' : ''}`;
  if (env.only.includes(name)) return ` Measured on ${date} with \`node bench/run.mjs --only ${env.only.join(',')}\` (${load}).`;
  return ` Measured in an earlier run, ${date} (${load}).`;
}
