// The integration guide's Express example, re-created as a baseline: raw body, HMAC, an in-memory
// Set for idempotency, console.log as "processing". Nothing is durable.
const express = require('express');
const crypto = require('node:crypto');

const app = express();
const processedEvents = new Set();
app.use(express.raw({ type: 'application/json' }));

app.post('/webhooks/procureiq', (req, res) => {
  const signature = req.headers['x-procureiq-signature'];
  const expected = `sha256=${crypto.createHmac('sha256', process.env.WEBHOOK_SECRET).update(req.body).digest('hex')}`;
  if (!signature || signature !== expected) return res.status(401).send('Unauthorized');
  const event = JSON.parse(req.body.toString('utf8'));
  res.sendStatus(200);
  handleEvent(event).catch((error) => console.error('Failed to process ProcureIQ event', error));
});

async function handleEvent(event) {
  if (processedEvents.has(event.id)) {
    console.log('Skipping duplicate ProcureIQ event', event.id);
    return;
  }
  processedEvents.add(event.id);
  switch (event.type) {
    case 'order.created':
      console.log('New order received', event.data.orderId);
      break;
    default:
      console.log('Unhandled ProcureIQ event', event.type);
  }
}

app.listen(Number(process.env.PORT), '127.0.0.1', () => process.send?.('ready'));
