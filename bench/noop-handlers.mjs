// The benchmark's handlers: a no-op for every type that records how long each event waited
// between being stored and its handler starting. Figures are written to $BENCH_OUT at exit.
import { writeFileSync } from 'node:fs';

const waits = [];
let first = 0;
let last = 0;

export default {
  '*': async (_event, ctx) => {
    const now = Date.now();
    if (first === 0) first = now;
    last = now;
    waits.push(now - ctx.receivedAt);
  },
};

process.on('exit', () => {
  if (process.env.BENCH_OUT)
    writeFileSync(process.env.BENCH_OUT, JSON.stringify({ count: waits.length, first, last, waits }));
});
