/**
 * Start the chaos server (`python -m resilience chaos --port 0 ...`) for a test file and
 * talk to its control endpoints. The Python comes from `$PYTHON` (the repo's venv when run
 * from `tests/test_typescript.py`), else `python3`; it runs from the repo's root.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { dirname, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

/** The repo's root: this file is ts/dist/test/chaos.js once built. */
const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');

/** One attempt the server received (the pinned fields of `GET /_chaos/log`). */
export interface LogEntry {
  request_id: string;
  retry_count: number | null;
  status: number | null;
  outcome: string;
  stream: boolean;
}

export interface ChaosServer {
  url: string;
  /** Every attempt received since the last reset, in order. */
  log(): Promise<LogEntry[]>;
  /**
   * Clear the log and start over. With settings: the server's start-up settings with these
   * changes (snake_case names, as in Python's `Settings`); without: the current settings.
   */
  reset(settings?: Record<string, unknown>): Promise<void>;
  stop(): Promise<void>;
}

export async function startChaos(args: string[], startupMs = 120_000): Promise<ChaosServer> {
  const python = process.env.PYTHON ?? 'python3';
  const child: ChildProcess = spawn(
    python,
    ['-m', 'resilience', 'chaos', '--port', '0', ...args],
    { cwd: ROOT, stdio: ['ignore', 'pipe', 'inherit'] },
  );
  const url = await firstUrl(child, startupMs);
  return {
    url,
    async log() {
      const response = await fetch(`${url}/_chaos/log`);
      return (await response.json()) as LogEntry[];
    },
    async reset(settings) {
      const response = await fetch(`${url}/_chaos/reset`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: settings === undefined ? '' : JSON.stringify(settings),
      });
      if (!response.ok) throw new Error(`reset failed: ${await response.text()}`);
    },
    async stop() {
      if (child.exitCode !== null) return;
      const exited = once(child, 'exit');
      child.kill('SIGINT');
      await exited;
    },
  };
}

/**
 * The model id, from the one place it lives (`resilience.MODEL`): `$RESILIENCE_MODEL` when
 * the Python test runner passes it, else asked of Python.
 */
export function projectModel(): string {
  if (process.env.RESILIENCE_MODEL) return process.env.RESILIENCE_MODEL;
  const python = process.env.PYTHON ?? 'python3';
  return execFileSync(python, ['-c', 'import resilience; print(resilience.MODEL)'], {
    cwd: ROOT,
    encoding: 'utf8',
  }).trim();
}

/** The URL in the server's first line of output. */
function firstUrl(child: ChildProcess, startupMs: number): Promise<string> {
  return new Promise((resolvePromise, reject) => {
    if (!child.stdout) {
      reject(new Error('the chaos server has no stdout'));
      return;
    }
    const lines = createInterface({ input: child.stdout });
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`the chaos server printed no URL within ${startupMs} ms`));
    }, startupMs);
    const done = () => {
      clearTimeout(timer);
      lines.removeAllListeners('line');
      child.removeListener('exit', onExit);
      child.removeListener('error', onError);
    };
    const onExit = (code: number | null) => {
      done();
      reject(new Error(`the chaos server exited (${code}) before printing its URL`));
    };
    const onError = (error: Error) => {
      done();
      reject(new Error(`could not start ${process.env.PYTHON ?? 'python3'}: ${error.message}`));
    };
    child.once('exit', onExit);
    child.once('error', onError);
    lines.once('line', (line: string) => {
      done();
      const found = /http:\/\/127\.0\.0\.1:\d+/.exec(line);
      if (found) resolvePromise(found[0]);
      else reject(new Error(`no URL in the chaos server's first line: ${line}`));
    });
  });
}
