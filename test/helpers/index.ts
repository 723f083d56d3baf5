import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { examplePayloads } from '../../src/events/examples.ts';
import type { HttpResponse } from '../../src/receiver/http-errors.ts';
import type { Receiver } from '../../src/receiver/receiver.ts';
import { sign } from '../../src/signature/sign.ts';

export const REPO = new URL('../../', import.meta.url).pathname;
export const BIN = join(REPO, 'bin', 'procureiq-webhooks.js');
export const SECRET = 'test-secret-0123456789';

/** A fresh temporary directory, removed by the returned cleanup. */
export function tempDir(prefix = 'piq-test-'): { dir: string; cleanup: () => void } {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  return { dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

/** A webhook delivery of `body`, signed with `secret`, for a web-standard (fetch) handler. */
export function signedRequest(body: string, secret = SECRET): Request {
  return new Request('http://x/webhooks/procureiq', {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-procureiq-signature': sign(secret, body) },
    body,
  });
}

/** POSTs a body signed with `secret` and returns status and parsed JSON. */
export async function postSigned(
  url: string,
  body: string | Record<string, unknown>,
  options: { secret?: string; headers?: Record<string, string>; timeoutMs?: number } = {},
): Promise<{ status: number; body: Record<string, unknown> }> {
  const text = typeof body === 'string' ? body : JSON.stringify(body);
  const res = await fetch(url, {
    method: 'POST',
    // An answer that never comes fails the test here, naming the URL, rather than stalling it.
    signal: AbortSignal.timeout(options.timeoutMs ?? 30_000),
    headers: {
      'content-type': 'application/json',
      'x-procureiq-signature': sign(options.secret ?? SECRET, text),
      'x-procureiq-delivery': crypto.randomUUID(),
      'x-procureiq-timestamp': String(Math.floor(Date.now() / 1000)),
      ...options.headers,
    },
    body: text,
  });
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
}

/**
 * A load: a signed `order.created` for each id, posted by `senders` at a time, each sender taking
 * the next id as it is answered. Resolves with every answer's status.
 */
export async function postOrders(url: string, ids: readonly string[], senders: number): Promise<number[]> {
  let next = 0;
  const statuses: number[] = [];
  await Promise.all(
    Array.from({ length: senders }, async () => {
      for (;;) {
        const id = ids[next++];
        if (id === undefined) return;
        statuses.push((await postSigned(url, { ...examplePayloads['order.created'], id })).status);
      }
    }),
  );
  return statuses;
}

export async function waitFor<T>(
  check: () => Promise<T | undefined | false> | T | undefined | false,
  { timeoutMs = 15_000, intervalMs = 25, what = 'condition' } = {},
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value !== undefined && value !== false) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs}ms waiting for ${what}`);
    await sleep(intervalMs);
  }
}

/** A running CLI process with its output collected. */
export interface CliProcess {
  child: ChildProcess;
  stdout: () => string;
  stderr: () => string;
  exited: Promise<number | null>;
}

export function startCli(
  args: string[],
  options: { env?: Record<string, string>; cwd?: string } = {},
): CliProcess {
  const child = spawn(process.execPath, [BIN, ...args], {
    cwd: options.cwd ?? REPO,
    env: { ...process.env, LOG_LEVEL: 'info', ...options.env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  child.stdout?.on('data', (d: Buffer) => {
    out += d.toString();
  });
  child.stderr?.on('data', (d: Buffer) => {
    err += d.toString();
  });
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  return { child, stdout: () => out, stderr: () => err, exited };
}

/** Runs a CLI command to completion. */
export async function runCli(
  args: string[],
  options: { env?: Record<string, string>; cwd?: string } = {},
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const p = startCli(args, options);
  const code = await p.exited;
  return { code, stdout: p.stdout(), stderr: p.stderr() };
}

/** Starts `serve` (with WARM_UP=200 unless `env` says otherwise) and waits until it answers /healthz. */
export async function startServer(
  dir: string,
  env: Record<string, string> = {},
  args: string[] = [],
): Promise<CliProcess & { url: string; port: number }> {
  const port = await freePort();
  const p = startCli(['serve', ...args], {
    cwd: dir,
    env: {
      WEBHOOK_SECRET: SECRET,
      PORT: String(port),
      DATABASE_URL: `sqlite:${join(dir, 'inbox.db')}`,
      // The default 5,000 warm-up deliveries take a second per start; tests start dozens.
      WARM_UP: '200',
      ...env,
    },
  });
  await waitFor(
    async () => {
      if (p.child.exitCode !== null)
        throw new Error(`serve exited early (${p.child.exitCode}): ${p.stderr()}${p.stdout()}`);
      try {
        return (await fetch(`http://127.0.0.1:${port}/healthz`)).ok;
      } catch {
        return false;
      }
    },
    { what: 'serve to answer /healthz' },
  );
  return { ...p, port, url: `http://127.0.0.1:${port}/webhooks/procureiq` };
}

export async function stopProcess(p: CliProcess, signal: NodeJS.Signals = 'SIGTERM'): Promise<number | null> {
  if (p.child.exitCode === null && p.child.signalCode === null) p.child.kill(signal);
  return p.exited;
}

export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

/** A local HTTP endpoint that records what is POSTed to it (e.g. alerts). */
export async function startCollector(): Promise<{
  url: string;
  received: unknown[];
  close: () => Promise<void>;
}> {
  const received: unknown[] = [];
  const server: Server = createServer((req: IncomingMessage, res) => {
    let body = '';
    req.on('data', (d: Buffer) => {
      body += d.toString();
    });
    req.on('end', () => {
      try {
        received.push(JSON.parse(body));
      } catch {
        received.push(body);
      }
      res.end('ok');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/alerts`,
    received,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

/** The PostgreSQL the tests use: the machine's local server, database `test`. */
export const PG_URL = process.env.TEST_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
export const REDIS_URL = process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';

/** A fresh schema name for one test file; `dropSchema` removes it and everything in it. */
export function uniqueSchema(prefix = 'piq_test'): string {
  return `${prefix}_${process.pid}_${Math.random().toString(36).slice(2, 8)}`;
}

export async function dropSchema(schema: string): Promise<void> {
  const { default: pg } = await import('pg');
  const client = new pg.Client({ connectionString: PG_URL });
  await client.connect();
  try {
    await client.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
  } finally {
    await client.end();
  }
}

/** Hands `body` to a consumer's receiver in-process, signed with `secret` and timestamped now. */
export function handleSigned(receiver: Receiver, body: Buffer, secret = SECRET): Promise<HttpResponse> {
  return receiver.handle({
    headers: {
      'content-type': 'application/json',
      'x-procureiq-signature': sign(secret, body),
      'x-procureiq-timestamp': String(Math.floor(Date.now() / 1000)),
    },
    body,
  });
}
