import type { Command } from 'commander';
import { redactUrl } from '../config/database-url.ts';
import { openStore } from '../store/open-store.ts';
import { cliDatabase, dbOption } from './open-cli-store.ts';

export function registerMigrate(program: Command): void {
  program
    .command('migrate')
    .description('apply pending database migrations (safe to run from several instances at once)')
    .addOption(dbOption())
    .action(async (opts: { db?: string }) => {
      const location = cliDatabase(opts.db);
      const store = openStore(location, { mode: 'inline' });
      try {
        await store.migrate();
        await store.ping();
      } finally {
        await store.close();
      }
      const where = location.kind === 'sqlite' ? location.path : redactUrl(location.url);
      process.stdout.write(`migrations are current on ${where}\n`);
    });
}
