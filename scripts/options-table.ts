// Writes serve's options table into README.md from src/config/options.ts, or with --check fails
// when the README's table differs. Run: node --import tsx scripts/options-table.ts [--check]
import { readFileSync, writeFileSync } from 'node:fs';
import { withOptionsTable } from '../src/config/options-table.ts';

const path = new URL('../README.md', import.meta.url);
const readme = readFileSync(path, 'utf8');
const updated = withOptionsTable(readme);
if (process.argv.includes('--check')) {
  if (updated !== readme) {
    process.stderr.write(
      'README.md: the options table is out of date; run "node --import tsx scripts/options-table.ts"\n',
    );
    process.exitCode = 1;
  }
} else if (updated !== readme) {
  writeFileSync(path, updated);
  process.stdout.write('README.md: options table updated\n');
} else {
  process.stdout.write('README.md: options table is current\n');
}
