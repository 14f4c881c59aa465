// A long-running child process of the harness (control server, node daemon, WorldFS mount): its own
// process group, its pid in <run>/pids (so the shell script's cleanup finds it even if this process
// dies first), stderr kept for the start-up error, stopped by signal with a bound.
import { spawn, type ChildProcess } from 'node:child_process';
import { appendFile } from 'node:fs/promises';
import { join } from 'node:path';

export type Exit = { code: number | null; signal: NodeJS.Signals | null };

export class Daemon {
  readonly name: string;
  readonly child: ChildProcess;
  readonly exited: Promise<Exit>;
  #gone = false;
  #stderr = '';

  private constructor(name: string, child: ChildProcess) {
    this.name = name;
    this.child = child;
    child.stderr?.on('data', (chunk: Buffer) => (this.#stderr = (this.#stderr + chunk.toString()).slice(-4000)));
    this.exited = new Promise((resolve) =>
      child.once('exit', (code, signal) => {
        this.#gone = true;
        resolve({ code, signal });
      }),
    );
  }

  /** Starts `argv` detached (a process group of its own) and notes its pid in `<runDir>/pids`. */
  static async start(name: string, argv: readonly string[], runDir: string, env?: NodeJS.ProcessEnv): Promise<Daemon> {
    const [file, ...args] = argv as [string, ...string[]];
    const child = spawn(file, args, { stdio: ['ignore', 'ignore', 'pipe'], detached: true, env: { ...process.env, ...env } });
    const daemon = new Daemon(name, child);
    await new Promise<void>((resolve, reject) => {
      child.once('spawn', resolve);
      child.once('error', reject);
    });
    await appendFile(join(runDir, 'pids'), `${child.pid}\n`);
    return daemon;
  }

  get pid(): number {
    return this.child.pid as number;
  }

  get gone(): boolean {
    return this.#gone;
  }

  /** The last lines it wrote to stderr (start-up errors go there before the log file exists). */
  get stderr(): string {
    return this.#stderr.trim();
  }

  /**
   * `signal` to the process (a daemon stops cleanly on SIGTERM: unmounts, saves state); SIGKILL to
   * its whole group once `graceMs` has passed, and after the exit to whatever of the group is left.
   */
  async stop(signal: NodeJS.Signals = 'SIGTERM', graceMs = 10_000): Promise<Exit> {
    try {
      if (!this.#gone) process.kill(this.pid, signal);
    } catch {
      // it exited meanwhile
    }
    const timer = setTimeout(() => this.#killGroup(), graceMs);
    try {
      return await this.exited;
    } finally {
      clearTimeout(timer);
      this.#killGroup();
    }
  }

  #killGroup(): void {
    try {
      process.kill(-this.pid, 'SIGKILL');
    } catch {
      // nothing of the group is left
    }
  }
}
