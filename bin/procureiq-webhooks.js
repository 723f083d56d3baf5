#!/usr/bin/env node
// The CLI entry point. It runs the compiled build in dist/, made by `npm install` (prepare).
import { existsSync } from 'node:fs';

const entry = new URL('../dist/cli/main.js', import.meta.url);
if (!existsSync(entry)) {
  process.stderr.write(
    'procureiq-webhooks: dist/ is missing; run "npm install" (or "npm run build") first\n',
  );
  process.exit(1);
}
const { main } = await import(entry.href);
await main(process.argv);
