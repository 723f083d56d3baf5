import { readFileSync } from 'node:fs';
import { SingleBar } from 'cli-progress';
import { type Command, Option } from 'commander';
import { parseSecrets } from '../config/resolve-config.ts';
import { type EventType, eventTypes, isKnownEventType } from '../events/catalogue.ts';
import { buildDelivery, freshEvent, type SimulatedDelivery } from '../simulator/deliveries.ts';
import { ConfigError } from '../util/errors.ts';
import { readDevSecret } from './dev-secret.ts';

interface SendInput {
  all?: boolean;
  count: string;
  rate?: string;
  concurrency: string;
  duplicate?: boolean;
  badSignature?: boolean;
  file?: string;
  url: string;
  secret?: string;
  quiet?: boolean;
  sandbox?: boolean;
}

export function registerSend(program: Command): void {
  program
    .command('send')
    .description("a local ProcureIQ simulator: sign and POST the guide's example events with fresh ids")
    .argument('[types...]', `event types to send, e.g. order.created (known: ${eventTypes.length} types)`)
    .option('--all', 'send one of each of the 22 event types')
    .option('--count <n>', 'send each selected event this many times, each with a fresh id', '1')
    .option('--rate <per-second>', 'at most this many requests per second')
    .option('--concurrency <n>', 'requests in flight at once', '8')
    .option('--duplicate', 'deliver every event twice (the second must answer "duplicate")')
    .option('--bad-signature', 'sign with a wrong secret (the receiver must answer 401)')
    .option('--file <event.json>', 'send this JSON file as the body, byte for byte')
    .addOption(
      new Option('--url <url>', 'the webhook endpoint')
        .env('PROCUREIQ_WEBHOOK_URL')
        .default('http://localhost:3000/webhooks/procureiq'),
    )
    .addOption(
      new Option(
        '--secret <secret>',
        'signing secret (default: WEBHOOK_SECRET, else the dev secret in data/)',
      ).env('WEBHOOK_SECRET'),
    )
    .option('--sandbox', 'send sandbox events to the sandbox endpoint, signed with WEBHOOK_SECRET_SANDBOX')
    .option('--quiet', 'print only the summary')
    .action(async (types: string[], input: SendInput, command: Command) => {
      if (input.sandbox) {
        if (command.getOptionValueSource('url') === 'default') input.url = `${input.url}/sandbox`;
        if (command.getOptionValueSource('secret') !== 'cli' && process.env.WEBHOOK_SECRET_SANDBOX) {
          input.secret = process.env.WEBHOOK_SECRET_SANDBOX;
        }
      }
      process.exitCode = await send(types, input);
    });
}

async function send(types: string[], input: SendInput): Promise<number> {
  const secret = parseSecrets(input.secret)[0] ?? readDevSecret();
  if (!secret) {
    throw new ConfigError(
      'send: no secret; pass --secret, set WEBHOOK_SECRET, or start "serve --dev" once to generate one',
    );
  }
  const count = positiveInt(input.count, '--count');
  const concurrency = positiveInt(input.concurrency, '--concurrency');
  const rate = input.rate === undefined ? undefined : positiveInt(input.rate, '--rate');
  let url: URL;
  try {
    url = new URL(input.url);
  } catch {
    throw new ConfigError(`send: --url "${input.url}" is not a URL`);
  }

  let makeDeliveries: () => SimulatedDelivery[];
  if (input.file) {
    const body = readFileSync(input.file, 'utf8');
    let event: Record<string, unknown>;
    try {
      event = JSON.parse(body) as Record<string, unknown>;
    } catch (error) {
      throw new ConfigError(`send: ${input.file} is not JSON: ${String(error)}`);
    }
    makeDeliveries = () => [
      buildDelivery(event, secret, { body, badSignature: input.badSignature === true }),
    ];
  } else {
    const selected = input.all ? eventTypes : types;
    if (selected.length === 0) {
      throw new ConfigError(
        `send: name event types (e.g. "send order.created") or use --all; known types:\n  ${eventTypes.join('\n  ')}`,
      );
    }
    const unknown = selected.filter((t) => !isKnownEventType(t));
    if (unknown.length > 0) {
      throw new ConfigError(
        `send: unknown event type(s) ${unknown.join(', ')}; known types:\n  ${eventTypes.join('\n  ')}`,
      );
    }
    makeDeliveries = () =>
      (selected as EventType[]).map((t) =>
        buildDelivery(freshEvent(t, Date.now(), input.sandbox ? 'sandbox' : 'production'), secret, {
          badSignature: input.badSignature === true,
        }),
      );
  }

  const plan: SimulatedDelivery[] = [];
  for (let i = 0; i < count; i++) {
    for (const delivery of makeDeliveries()) {
      plan.push(delivery);
      if (input.duplicate)
        plan.push({
          ...delivery,
          headers: { ...delivery.headers, 'x-procureiq-delivery': crypto.randomUUID() },
        });
    }
  }

  const verbose = !input.quiet && plan.length <= 50;
  const bar =
    !verbose && !input.quiet && process.stderr.isTTY
      ? new SingleBar({ format: 'sending [{bar}] {value}/{total} {eta_formatted} left' })
      : undefined;
  bar?.start(plan.length, 0);
  const tally = new Map<string, number>();
  let failed = 0;
  let next = 0;
  const started = Date.now();
  const interval = rate ? 1000 / rate : 0;

  async function post(delivery: SimulatedDelivery): Promise<void> {
    let line: string;
    try {
      // Stamped as it goes, as ProcureIQ stamps each delivery (the timestamp is not signed): with
      // --rate, a plan built up front sent minutes-old timestamps.
      const headers = { ...delivery.headers, 'x-procureiq-timestamp': String(Math.floor(Date.now() / 1000)) };
      const res = await fetch(url, { method: 'POST', headers, body: delivery.body });
      const answer = describeAnswer(await res.text());
      line = `${res.status} ${answer.label.padEnd(10)} ${delivery.type.padEnd(26)} ${delivery.eventId}`;
      const key = `${res.status} ${answer.code}`;
      tally.set(key, (tally.get(key) ?? 0) + 1);
      // Any answer but the one expected is a failure (exit 1): a wrong secret (401) or a refused
      // payload (400) exited 0. With --bad-signature, 401 is the answer expected.
      const expected =
        input.badSignature === true ? res.status === 401 : res.status >= 200 && res.status < 300;
      if (!expected) failed++;
    } catch (error) {
      failed++;
      const reason =
        error instanceof Error
          ? ((error.cause as Error | undefined)?.message ?? error.message)
          : String(error);
      line = `ERR ${reason} ${delivery.type} ${delivery.eventId}`;
      tally.set('network error', (tally.get('network error') ?? 0) + 1);
    }
    if (verbose) process.stdout.write(`${line}\n`);
    bar?.increment();
  }

  async function lane(): Promise<void> {
    for (;;) {
      const i = next++;
      const delivery = plan[i];
      if (!delivery) return;
      if (interval > 0) {
        const due = started + i * interval;
        const wait = due - Date.now();
        if (wait > 0) await new Promise((r) => setTimeout(r, wait));
      }
      await post(delivery);
    }
  }
  await Promise.all(Array.from({ length: Math.min(concurrency, plan.length) }, lane));
  bar?.stop();
  const seconds = (Date.now() - started) / 1000;
  const summary = [...tally.entries()].map(([k, n]) => `${n} × ${k}`).join(', ');
  process.stdout.write(
    `sent ${plan.length} deliveries to ${url.href} in ${seconds.toFixed(2)}s: ${summary}\n`,
  );
  return failed > 0 ? 1 : 0;
}

/** The receiver's answer: `{"status":"ok"}` or `{"error":{"code","message"}}`. */
function describeAnswer(text: string): { code: string; label: string } {
  try {
    const body = JSON.parse(text) as { status?: string; error?: { code?: string; message?: string } };
    if (body.status) return { code: body.status, label: body.status };
    return { code: body.error?.code ?? '', label: body.error?.message ?? text };
  } catch {
    return { code: '', label: text };
  }
}

function positiveInt(value: string, name: string): number {
  if (!/^\d+$/.test(value) || Number(value) < 1)
    throw new ConfigError(`send: ${name} "${value}" must be a whole number ≥ 1`);
  return Number(value);
}
