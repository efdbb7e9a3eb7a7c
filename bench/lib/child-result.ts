/**
 * Runs a load-generator child process to its end and picks out the one line it prints its
 * result on (`<prefix><json>`), with all its output kept for error messages.
 */
import { spawn } from 'node:child_process';

export interface ChildResult {
  /** Exit code (null when killed by a signal). */
  code: number | null;
  pid: number;
  /** The parsed JSON after the prefix, or undefined when no such line was printed. */
  result: unknown;
  /** Everything the child printed on stdout and stderr. */
  output: string;
}

/**
 * Spawns `args` (command first), collects stdout and stderr, and resolves when it exits.
 * @param killAfterMs SIGKILL the child if it runs longer (bounds a child stuck outside its own deadline).
 */
export function runForResultLine(args: readonly string[], prefix: string, killAfterMs?: number): Promise<ChildResult> {
  const [command, ...rest] = args as [string, ...string[]];
  return new Promise((resolve, reject) => {
    const child = spawn(command, rest, { stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.setEncoding('utf8').on('data', (text: string) => (output += text));
    child.stderr.setEncoding('utf8').on('data', (text: string) => (output += text));
    child.once('error', reject);
    const killer = killAfterMs === undefined ? undefined : setTimeout(() => child.kill('SIGKILL'), killAfterMs);
    // If the benchmark exits first (SIGINT/SIGTERM to it alone), do not leave the generator running.
    const killOnExit = () => child.kill('SIGKILL');
    process.on('exit', killOnExit);
    child.once('close', (code) => {
      clearTimeout(killer);
      process.off('exit', killOnExit);
      const line = output.split('\n').find((candidate) => candidate.startsWith(prefix));
      resolve({ code, pid: child.pid ?? 0, result: line === undefined ? undefined : JSON.parse(line.slice(prefix.length)), output });
    });
  });
}
