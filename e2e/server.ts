// Starts the real Chartkey server binary on 127.0.0.1 (port chosen by the
// OS), with a fresh data directory, and stops it by its process id.
import { spawn, ChildProcess } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface RunningServer {
  url: string;
  pid: number;
  dataDir: string;
  logFile: string;
  stop: () => Promise<void>;
}

export interface ServerOptions {
  /** A data directory to keep (made by the caller, left in place on stop). */
  dataDir?: string;
  /** The port to listen on (default: one the OS picks). */
  port?: number;
}

export async function startServer(extraArgs: string[] = [], options: ServerOptions = {}): Promise<RunningServer> {
  const bin = process.env.CHARTKEY_BIN;
  const dist = process.env.CHARTKEY_DIST;
  if (!bin || !dist) throw new Error('CHARTKEY_BIN and CHARTKEY_DIST must be set (cargo xtask test sets them)');
  const dataDir = options.dataDir ?? mkdtempSync(join(tmpdir(), 'chartkey-e2e-'));
  // Every test browser comes from 127.0.0.1: lift the per-client limits
  // (the server's own tests check that they hold).
  const limits = ['--registration-per-minute', '1000', '--login-per-minute', '1000'];
  // The server's log goes to a file beside the data directory: the records
  // tests scan it for plaintext, and it is there to read when a test fails.
  const logFile = `${dataDir}.${Date.now()}.log`;
  const log = openSync(logFile, 'w');
  const child: ChildProcess = spawn(bin, ['--port', String(options.port ?? 0), '--data-dir', dataDir, '--dist', dist, ...limits, ...extraArgs], {
    env: { ...process.env, CHARTKEY_LOG: process.env.CHARTKEY_LOG ?? 'info' },
    stdio: ['ignore', 'pipe', log],
  });
  const url = await new Promise<string>((resolve, reject) => {
    let buffer = '';
    const timer = setTimeout(() => reject(new Error('server did not start within 30 s')), 30_000);
    child.stdout!.on('data', (chunk) => {
      buffer += chunk.toString();
      const match = buffer.match(/running at (http:\/\/\S+)/);
      if (match) {
        clearTimeout(timer);
        resolve(match[1].replace(/\/$/, ''));
      }
    });
    child.on('exit', (code) => reject(new Error(`server exited early with ${code}`)));
    child.on('error', (err) => reject(new Error(`could not start ${bin}: ${err.message}`)));
  });
  // It prints its URL before opening its ledger (an external chain may
  // take seconds to deploy to): ready when /healthz answers on its port.
  const port = options.port ?? Number(new URL(url).port);
  const ready = Date.now() + 60_000;
  while (!(await fetch(`http://127.0.0.1:${port}/healthz`).then((r) => r.ok, () => false))) {
    if (child.exitCode !== null) throw new Error(`server exited early with ${child.exitCode}; its log: ${logFile}`);
    if (Date.now() > ready) throw new Error(`server did not answer on ${port} within 60 s; its log: ${logFile}`);
    await new Promise((r) => setTimeout(r, 50));
  }
  const pid = child.pid!;
  return {
    url,
    pid,
    dataDir,
    logFile,
    stop: async () => {
      closeSync(log);
      if (child.exitCode !== null || child.signalCode !== null) {
        // It stopped by itself: its log stays, for the failure it explains.
        throw new Error(`the server had exited (${child.exitCode ?? child.signalCode}); its log: ${logFile}`);
      }
      const exited = new Promise((resolve) => child.once('exit', resolve));
      process.kill(pid, 'SIGTERM');
      await exited;
      if (!options.dataDir) rmSync(dataDir, { recursive: true, force: true });
      rmSync(logFile, { force: true });
    },
  };
}
