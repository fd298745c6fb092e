// A hospital's stack for the browser tests: the shared engines `cargo xtask
// test` started for them (PostgreSQL, moto's S3 and anvil, named by
// CHARTKEY_TEST_POSTGRES, CHARTKEY_TEST_S3 and CHARTKEY_TEST_CHAIN), a
// database and a bucket of its own for each test, and nginx (Debian) in
// front of replicas of the real server. All on 127.0.0.1; nginx is stopped
// by its process id.
import { spawn, execFileSync, ChildProcess } from 'node:child_process';
import { mkdtempSync, writeFileSync, chmodSync, mkdirSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface Engines {
  /** PostgreSQL's administrator URL. */
  postgres: string;
  /** moto's S3 endpoint (the AWS_* variables are set beside it). */
  s3: string;
  /** anvil's JSON-RPC. */
  chain: string;
}

/** The shared engines, when this run has them. */
export function engines(): Engines | null {
  const { CHARTKEY_TEST_POSTGRES: postgres, CHARTKEY_TEST_S3: s3, CHARTKEY_TEST_CHAIN: chain } = process.env;
  return postgres && s3 && chain ? { postgres, s3, chain } : null;
}

/** A port that was free a moment ago. */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

/** A new, empty database named `name`; its URL. */
export function freshDatabase(e: Engines, name: string): string {
  execFileSync('psql', [e.postgres, '-q', '-c', `CREATE DATABASE ${name}`]);
  const url = new URL(e.postgres);
  url.pathname = `/${name}`;
  return url.toString();
}

/** A new bucket named `name`; its s3:// URL. */
export async function freshBucket(e: Engines, name: string): Promise<string> {
  const made = await fetch(`${e.s3}/${name}`, { method: 'PUT' });
  if (!made.ok) throw new Error(`creating bucket ${name}: ${made.status}`);
  return `s3://${name}`;
}

/** anvil's development accounts' well-known keys (funded at its start);
 *  a test takes those no other test uses. */
export const ANVIL_KEYS = [
  '59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d',
  '5de4111afa1a4b94908f83103eb1f1706367c2e68ca870fc3fb9a804cdab365a',
  '7c852118294e51e653712a81e05800f419141751be58f605c371e15141b007a6',
];

/** Writes `key` to `path`, readable by its owner only. */
export function writeKey(path: string, key: string) {
  mkdirSync(join(path, '..'), { recursive: true });
  writeFileSync(path, key, { mode: 0o600 });
}

export interface Nginx {
  port: number;
  stop: () => Promise<void>;
}

/** nginx on `port`, balancing `upstreams` (replica name → port) as an
 *  operator would, with one addition for tests: a `chartkey_replica`
 *  cookie naming a replica sends a browser's requests to that replica
 *  only, and every answer says which replica gave it
 *  (`X-Chartkey-Upstream`). Passkeys are bound to the one origin, so a
 *  test pins its steps this way rather than by port. */
export async function startNginx(port: number, upstreams: Record<string, number>): Promise<Nginx> {
  const dir = mkdtempSync(join(tmpdir(), 'chartkey-nginx-'));
  chmodSync(dir, 0o777);
  const servers = Object.values(upstreams).map((p) => `server 127.0.0.1:${p};`).join(' ');
  const pinned = Object.entries(upstreams).map(([name, p]) => `upstream replica_${name} { server 127.0.0.1:${p}; }`);
  const pins = Object.keys(upstreams).map((name) => `${name} replica_${name};`).join(' ');
  writeFileSync(join(dir, 'nginx.conf'), `daemon off;
worker_processes 1;
pid ${dir}/nginx.pid;
error_log ${dir}/error.log warn;
events { worker_connections 256; }
http {
    access_log off;
    client_body_temp_path ${dir}/body;
    proxy_temp_path ${dir}/proxy;
    fastcgi_temp_path ${dir}/fastcgi;
    uwsgi_temp_path ${dir}/uwsgi;
    scgi_temp_path ${dir}/scgi;
    client_max_body_size 200m;
    upstream chartkey { ${servers} }
    ${pinned.join('\n    ')}
    map $cookie_chartkey_replica $pool { ${pins} default chartkey; }
    server {
        listen 127.0.0.1:${port};
        location / {
            proxy_pass http://$pool;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Host $http_host;
            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
            proxy_buffering off;
            proxy_read_timeout 1h;
            add_header X-Chartkey-Upstream $upstream_addr always;
        }
    }
}
`);
  const child: ChildProcess = spawn('/usr/sbin/nginx', ['-p', dir, '-c', join(dir, 'nginx.conf')], { stdio: ['ignore', 'ignore', 'inherit'] });
  const deadline = Date.now() + 10_000;
  for (;;) {
    const up = await fetch(`http://127.0.0.1:${port}/healthz`).then(() => true, () => false);
    if (up) break;
    if (Date.now() > deadline) throw new Error(`nginx did not listen on ${port}`);
    await new Promise((r) => setTimeout(r, 50));
  }
  return {
    port,
    stop: async () => {
      // SIGTERM to the master, which stops its worker too.
      const exited = new Promise((resolve) => child.once('exit', resolve));
      process.kill(child.pid!, 'SIGTERM');
      await exited;
    },
  };
}
