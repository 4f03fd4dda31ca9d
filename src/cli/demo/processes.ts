/**
 * The demo's child processes: each logs to its own file, and all of them are stopped together
 * (SIGTERM, then SIGKILL for stragglers) however the demo ends.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { closeSync, openSync } from 'node:fs';

export class ProcessGroup {
  private readonly children: Array<{ name: string; child: ChildProcess }> = [];

  /** Starts `node <args>` with stdout and stderr appended to `logFile`. */
  startNode(name: string, args: string[], logFile: string, env: NodeJS.ProcessEnv = {}): ChildProcess {
    const fd = openSync(logFile, 'a');
    try {
      const child = spawn(process.execPath, args, { stdio: ['ignore', fd, fd], env: { ...process.env, ...env } });
      this.children.push({ name, child });
      return child;
    } finally {
      closeSync(fd);
    }
  }

  /** Names of children that have exited. */
  exited(): string[] {
    return this.children.filter(({ child }) => child.exitCode !== null || child.signalCode !== null).map(({ name }) => name);
  }

  async stopAll(graceMs = 5_000): Promise<void> {
    const running = this.children.filter(({ child }) => child.exitCode === null && child.signalCode === null);
    const exits = running.map(({ child }) => new Promise<void>((resolve) => child.once('exit', () => resolve())));
    for (const { child } of running) child.kill('SIGTERM');
    const timer = setTimeout(() => {
      for (const { child } of running) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    }, graceMs);
    await Promise.all(exits);
    clearTimeout(timer);
  }
}
