// Copies non-TypeScript assets (SQL migrations, the dashboard, uPlot for its charts) next to the
// compiled output.
import { cpSync, existsSync, mkdirSync } from 'node:fs';

const assets = [
  ['src/store/sqlite/migrations', 'dist/store/sqlite/migrations'],
  ['src/store/postgres/migrations', 'dist/store/postgres/migrations'],
  ['src/ops/dashboard', 'dist/ops/dashboard'],
];
for (const [from, to] of assets) {
  if (existsSync(from)) cpSync(from, to, { recursive: true });
}

// The dashboard serves uPlot from here (/admin/vendor/...): nothing comes from a CDN.
mkdirSync('dist/ops/dashboard/vendor', { recursive: true });
for (const file of ['uPlot.iife.min.js', 'uPlot.min.css'])
  cpSync(`node_modules/uplot/dist/${file}`, `dist/ops/dashboard/vendor/${file}`);
