// README, Alerts: "with ALERT_WEBHOOK_URL set, a JSON summary … is POSTed there too. A failure to
// send is logged and never stops the service." Secrets are never logged: not the signing secret,
// and not the alert URL, whose path is a credential for chat webhooks.
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { examplePayloads } from '../../src/events/examples.ts';
import {
  freePort,
  postSigned,
  SECRET,
  startServer,
  stopProcess,
  tempDir,
  waitFor,
} from '../helpers/index.ts';

const URL_TOKEN = 'T0AAAAAAA/B0BBBBBBB/alertUrlToken0123456789';

type LogLine = Record<string, unknown> & { msg?: string };
const logLines = (stdout: string): LogLine[] =>
  stdout
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as LogLine);

/** Starts serve with the given alert URL, forges one signature (threshold 1), and returns the
 * warning logged about sending that alert; the service must then still take deliveries. */
async function alertSendFailure(alertUrl: string): Promise<{ warning: LogLine; output: string }> {
  const tmp = tempDir();
  const server = await startServer(tmp.dir, {
    ALERT_WEBHOOK_URL: alertUrl,
    SIGNATURE_ALERT_THRESHOLD: '1',
    LOG_LEVEL: 'trace',
  });
  try {
    const forged = await postSigned(server.url, examplePayloads['order.created'], { secret: 'forged' });
    assert.equal(forged.status, 401);
    const warning = await waitFor(
      () => logLines(server.stdout()).find((l) => l.alert === 'signature_failures' && l.level === 40),
      { what: 'the warning about the alert that could not be sent' },
    );
    const ok = await postSigned(server.url, { ...examplePayloads['order.created'], id: 'evt_after_alert' });
    assert.deepEqual(ok, { status: 200, body: { status: 'ok' } }, 'the service keeps taking deliveries');
    assert.equal(await stopProcess(server), 0);
    return { warning, output: server.stdout() + server.stderr() };
  } finally {
    await stopProcess(server, 'SIGKILL');
    tmp.cleanup();
  }
}

describe('alerts: a failure to send is logged, and the service goes on', () => {
  let posted: { path: string; body: unknown }[];
  let failing: ReturnType<typeof createServer>;
  let failingUrl: string;

  before(async () => {
    posted = [];
    failing = createServer((req, res) => {
      let body = '';
      req.on('data', (d: Buffer) => {
        body += d.toString();
      });
      req.on('end', () => {
        posted.push({ path: req.url ?? '', body: JSON.parse(body) });
        res.writeHead(500, { 'content-type': 'text/plain' }).end('internal error');
      });
    });
    await new Promise<void>((resolve) => failing.listen(0, '127.0.0.1', resolve));
    failingUrl = `http://127.0.0.1:${(failing.address() as AddressInfo).port}/services/${URL_TOKEN}`;
  });
  after(() => new Promise<void>((resolve) => failing.close(() => resolve())));

  it('the alert webhook answers 500', async () => {
    const { warning, output } = await alertSendFailure(failingUrl);
    assert.equal(warning.msg, 'alert webhook answered with an error');
    assert.equal(warning.status, 500);
    assert.equal(posted.length, 1);
    assert.equal(posted[0]?.path, `/services/${URL_TOKEN}`);
    const alert = posted[0]?.body as { alert: string; text: string };
    assert.equal(alert.alert, 'signature_failures');
    assert.match(alert.text, /1 deliveries failed signature verification within a minute/);
    assert.ok(!output.includes(SECRET), 'the signing secret is not logged');
    assert.ok(!output.includes('alertUrlToken0123456789'), 'the alert URL is not logged');
  });

  it('nothing listens at the alert webhook URL', async () => {
    const closed = `http://127.0.0.1:${await freePort()}/services/${URL_TOKEN}`;
    const { warning, output } = await alertSendFailure(closed);
    assert.equal(warning.msg, 'could not send alert to ALERT_WEBHOOK_URL');
    assert.equal(typeof warning.err, 'string');
    assert.ok(!output.includes(SECRET), 'the signing secret is not logged');
    assert.ok(!output.includes('alertUrlToken0123456789'), 'the alert URL is not logged');
  });
});
