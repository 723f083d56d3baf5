// Copies non-TypeScript assets (SQL migrations) next to the compiled output.
import { cpSync, existsSync } from 'node:fs';

const assets = [
  ['src/store/sqlite/migrations', 'dist/store/sqlite/migrations'],
  ['src/store/postgres/migrations', 'dist/store/postgres/migrations'],
  ['src/ops/dashboard', 'dist/ops/dashboard'],
];
for (const [from, to] of assets) {
  if (existsSync(from)) cpSync(from, to, { recursive: true });
}
