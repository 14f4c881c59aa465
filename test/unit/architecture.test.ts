// The module map of STYLE.md, enforced: who may import what, and no synchronous fs or
// child_process calls anywhere in src/ (they deadlock a process that serves a mount; SPEC §12).
import t from 'tap';
import { readdir, readFile } from 'node:fs/promises';
import { join, relative } from 'node:path';
import { REPO } from '../helpers/node.js';

const SRC = join(REPO, 'src');
/** The longest a hand-written file under src/ may be. */
const MAX_LINES = 300;
const MUST_NOT_IMPORT: Record<string, string[]> = {
  // Promise primitives any area may use (the serial-by-key queue): they import nothing from src/.
  async: ['cli', 'node', 'control', 'world', 'runtime', 'manifest', 'protocol', 'fuse', 'vfs', 'store', 'errors'],
  // What every area that answers a file operation shares: the errno registry, JSON document checks, open(2) flags.
  errors: ['cli', 'node', 'control', 'world', 'runtime', 'manifest', 'protocol', 'fuse', 'vfs', 'store', 'async'],
  store: ['cli', 'node', 'control', 'world', 'runtime', 'manifest', 'protocol', 'fuse', 'vfs', 'errors'],
  vfs: ['cli', 'node', 'control', 'world', 'runtime', 'manifest', 'protocol', 'fuse', 'store'],
  protocol: ['node', 'control', 'world', 'fuse', 'runtime', 'cli', 'vfs'],
  manifest: ['node', 'control', 'world', 'fuse', 'runtime', 'cli', 'vfs'],
  runtime: ['fuse', 'node', 'control', 'world', 'cli', 'manifest', 'vfs'],
  // store/: makeDirectory for the mount point (Node 20's recursive mkdir spins under /proc).
  fuse: ['node', 'control', 'world', 'runtime', 'manifest', 'cli'],
  node: ['cli', 'control', 'world'],
  control: ['node', 'world', 'fuse', 'cli', 'vfs'],
  world: ['node', 'control', 'cli'],
  cli: [],
};
// Each area's main file opens with its charter: what the area owns and what it must not import (every
// area the rule above forbids, named as `area/`), so a newcomer reads the rule where the code is.
const CHARTERS: Record<string, string> = {
  async: 'serial-queue.ts',
  errors: 'errno.ts',
  store: 'index.ts',
  vfs: 'dispatch.ts',
  protocol: 'envelope.ts',
  manifest: 'index.ts',
  runtime: 'live-service.ts',
  fuse: 'mount.ts',
  node: 'daemon.ts',
  control: 'control-server.ts',
  world: 'world-daemon.ts',
  cli: 'main.ts',
};
const PACKAGE_OWNERS: Record<string, string[]> = {
  'fuse-native': ['fuse/'],
  execa: ['runtime/run-driver.ts', 'runtime/driver-process.ts'],
  etcd3: ['control/etcd/'],
  cockatiel: ['control/etcd/'],
};

async function sources(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { withFileTypes: true });
  const nested = await Promise.all(
    entries.map((e) => (e.isDirectory() ? sources(join(dir, e.name)) : Promise.resolve(e.name.endsWith('.ts') ? [join(dir, e.name)] : []))),
  );
  return nested.flat();
}

const files = await sources(SRC);
t.ok(files.length > 20, 'found the sources');
/** Each file under src/ (relative to it) → the files under src/ it imports, type-only imports included. */
const importsOf = new Map<string, string[]>();
for (const file of files) {
  const rel = relative(SRC, file);
  const area = rel.split('/')[0] as string;
  if (!MUST_NOT_IMPORT[area]) t.fail(`${rel}: the area ${area}/ has no import rule in this test`);
  const text = await readFile(file, 'utf8');
  const imports = [...text.matchAll(/(?:^|\n)\s*(?:(?:import|export)[^'"]*?from\s+|import\s+)'([^']+)'/g)].map((m) => m[1] as string);
  importsOf.set(
    rel,
    imports.filter((spec) => spec.startsWith('.')).map((spec) => relative(SRC, join(file, '..', spec)).replace(/\.js$/, '.ts')),
  );
  for (const spec of imports) {
    if (spec.startsWith('.')) {
      const target = relative(SRC, join(file, '..', spec)).split('/')[0] as string;
      if (MUST_NOT_IMPORT[area]?.includes(target)) t.fail(`${rel} imports ${spec}: ${area}/ must not import ${target}/`);
    } else {
      const owners = PACKAGE_OWNERS[spec];
      if (owners && !owners.some((owner) => rel.startsWith(owner))) t.fail(`${rel} imports ${spec}: only ${owners.join(', ')} may`);
    }
  }
  const sync =
    /\b(readFileSync|writeFileSync|existsSync|statSync|lstatSync|readdirSync|mkdirSync|openSync|spawnSync|execSync|execFileSync|realpathSync|accessSync|appendFileSync|renameSync|unlinkSync|rmSync)\b/.exec(
      text,
    );
  if (sync) t.fail(`${rel} calls ${sync[1]}: synchronous calls deadlock a process that serves a mount`);
  // A file a newcomer reads whole (issue 15); generated files are read through their schema instead.
  const lines = text.split('\n').length - 1;
  if (lines > MAX_LINES && !rel.endsWith('.gen.ts')) t.fail(`${rel}: ${lines} lines; split it by job (at most ${MAX_LINES})`);
}
t.pass('checked every file under src/');

for (const [area, forbidden] of Object.entries(MUST_NOT_IMPORT)) {
  const main = `${area}/${CHARTERS[area] ?? '(none)'}`;
  const text = await readFile(join(SRC, main), 'utf8').catch(() => '');
  const charter = /^\/\*\*[\s\S]*?\*\//.exec(text)?.[0] ?? '';
  if (!/\bMust not\b/.test(charter)) t.fail(`${main}: the area's main file must open with a charter that says what it must not do`);
  const unnamed = forbidden.filter((other) => !charter.includes(`${other}/`));
  if (unnamed.length > 0) t.fail(`${main}: the charter does not name ${unnamed.map((a) => `${a}/`).join(', ')}, which ${area}/ must not import`);
}
t.pass('every area opens with a charter naming its import rule');

/** An import cycle among the files under `dir`, as the files in order, or undefined. */
function cycleUnder(dir: string): string[] | undefined {
  const done = new Set<string>();
  const path: string[] = [];
  const visit = (file: string): string[] | undefined => {
    const at = path.indexOf(file);
    if (at >= 0) return [...path.slice(at), file];
    if (done.has(file)) return undefined;
    path.push(file);
    for (const next of importsOf.get(file) ?? []) {
      const cycle = next.startsWith(dir) ? visit(next) : undefined;
      if (cycle) return cycle;
    }
    path.pop();
    done.add(file);
    return undefined;
  };
  for (const file of [...importsOf.keys()].filter((f) => f.startsWith(dir)).sort()) {
    const cycle = visit(file);
    if (cycle) return cycle;
  }
  return undefined;
}

// The hubs and the ops reach a client's connection through ConnectionPeer, never connection.ts (which dispatches to them).
const controlCycle = cycleUnder('control/');
t.equal(controlCycle?.join(' -> ') ?? 'none', 'none', 'src/control/ has no import cycle');

/** What loading each file under src/ loads: its imports but `import type` ones, as src/ files or package names. */
const loadsOf = new Map<string, string[]>();
for (const file of files) {
  const text = await readFile(file, 'utf8');
  const specs = [...text.matchAll(/(?:^|\n)\s*(?:import(?!\s+type\b)[^'"]*?from\s+|export[^'"]*?from\s+|import\s+)'([^']+)'/g)].map((m) => m[1] as string);
  loadsOf.set(
    relative(SRC, file),
    specs.map((spec) => (spec.startsWith('.') ? relative(SRC, join(file, '..', spec)).replace(/\.js$/, '.ts') : spec)),
  );
}
/** Every src/ file and package that loading `start` loads. */
function loadedBy(start: string): Set<string> {
  const loaded = new Set<string>();
  const load = (what: string): void => {
    if (loaded.has(what)) return;
    loaded.add(what);
    for (const next of loadsOf.get(what) ?? []) load(next);
  };
  load(start);
  return loaded;
}
const HEAVY = ['fuse-native', 'etcd3', 'ws', 'execa', 'ajv', 'pino', 'prom-client'];
const packagesOf = (loaded: Set<string>): string => [...loaded].filter((x) => !x.includes('/')).join(', ');
const loadedByCliStart = loadedBy('cli/main.ts');
// Every command line starts here; a command's own module is imported when it runs (main.ts).
const heavy = HEAVY.filter((pkg) => loadedByCliStart.has(pkg));
t.same(heavy, [], `starting the CLI loads none of the daemons' packages (it loads ${packagesOf(loadedByCliStart)})`);
// The parent of the mount helper and of --daemon checks the options and waits for the detached daemon,
// which loads the daemon's code itself: importing it there only delayed the daemon's start.
for (const command of ['cli/node-command.ts', 'cli/world-command.ts']) {
  const loaded = loadedBy(command);
  t.same(
    HEAVY.filter((pkg) => loaded.has(pkg)),
    [],
    `${command} loads none of the daemons' packages until it runs the daemon (it loads ${packagesOf(loaded) || 'none'})`,
  );
}
