/**
 * Loaded into every test process after tap's own preloads (`node-arg` in .taprc). tap's processinfo
 * puts itself into each child's NODE_OPTIONS, so every node process a test starts (the CLI, daemons,
 * node drivers: thousands in a run) would load it, start a module-hooks thread and write a record
 * under .tap/ at exit: 160 ms more per start, half the CPU of a CLI-heavy test. Nothing reads those
 * records (coverage is off), so the children start as a user's would.
 */
interface SpawnOptions {
  env: Record<string, string>;
}
// process-on-spawn (a processinfo dependency) keeps its listeners on this global, and runs them in
// order at each spawn: this one runs after processinfo's, which has just added itself.
const spawnHooks = (globalThis as Record<symbol, { listeners: ((options: SpawnOptions) => void)[] } | undefined>)[Symbol.for('process-on-spawn@*:singletonId')];
// `--import=<url>` or `--import <url>`, each word quoted or not, as processinfo writes or keeps it.
const PROCESSINFO_PRELOAD = /\s*"?--(?:import|loader|experimental-loader)"?(?:=|\s+"?)[^\s"]*@tapjs\/processinfo\/[^\s"]*"?(?=\s|$)/g;

spawnHooks?.listeners.push((options) => {
  const env = { ...options.env };
  const nodeOptions = env.NODE_OPTIONS?.replace(PROCESSINFO_PRELOAD, '').trim();
  if (nodeOptions) env.NODE_OPTIONS = nodeOptions;
  else delete env.NODE_OPTIONS;
  for (const key of Object.keys(env)) if (key.startsWith('_TAPJS_PROCESSINFO_')) delete env[key];
  options.env = env;
});
