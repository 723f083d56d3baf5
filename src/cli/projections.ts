import Database from 'better-sqlite3';
import { SingleBar } from 'cli-progress';
import { Command, Option } from 'commander';
import pg from 'pg';
import { inboxSchema, type parseDatabaseUrl } from '../config/database-url.ts';
import { type ProjectionDatabase, rebuildProjections } from '../projections/rebuild.ts';
import { resolveProjectionsConfig } from '../projections/registry.ts';
import { EXPORT_FORMATS, type ExportFormat, exportTable } from '../reports/export-table.ts';
import { openStore } from '../store/open-store.ts';
import { ConfigError, InputError } from '../util/errors.ts';
import { cliDatabase, dbOption, withStore } from './open-cli-store.ts';

/**
 * `projections rebuild`: recomputes the reporting tables from the stored events, with progress;
 * an interrupted rebuild resumes where it stopped when run again. `projections export TABLE`
 * streams one table as CSV or NDJSON.
 */
export function projectionsCommand(): Command {
  const command = new Command('projections').description(
    'reporting tables (procureiq_orders, procureiq_payments, …) kept from the events',
  );
  command
    .command('rebuild')
    .description('recompute the reporting tables from the stored events (resumes if interrupted)')
    .addOption(dbOption())
    .addOption(
      new Option(
        '--projections <list>',
        'tables to rebuild: all (default), none, or e.g. orders,payments',
      ).env('PROJECTIONS'),
    )
    .addOption(
      new Option('--projection-emails <mode>', 'user emails: keep (default), hash or drop').env(
        'PROJECTION_EMAILS',
      ),
    )
    .option('--restart', 'start over even if an interrupted rebuild could resume')
    .option('--batch-size <n>', 'events per transaction', '5000')
    .action(
      async (opts: {
        db?: string;
        projections?: string;
        projectionEmails?: string;
        restart?: boolean;
        batchSize: string;
      }) => {
        const config = resolveProjectionsConfig({
          projections: opts.projections,
          projectionEmails: opts.projectionEmails,
        });
        const batchSize = Number(opts.batchSize);
        if (!Number.isInteger(batchSize) || batchSize < 1)
          throw new ConfigError(`--batch-size must be a positive integer, not "${opts.batchSize}"`);
        const location = cliDatabase(opts.db);
        // Applies migrations (0004 creates the tables), and refuses a SQLite file that does not exist.
        const store = openStore(location, { mode: 'inline', mustExist: true });
        await store.migrate();
        await store.close();

        const controller = new AbortController();
        const onSignal = () => controller.abort(new Error('interrupted'));
        process.once('SIGINT', onSignal);
        process.once('SIGTERM', onSignal);
        const bar = new SingleBar({
          format: 'rebuilding [{bar}] {value}/{total} {eta_formatted} left',
          stream: process.stderr,
          noTTYOutput: true,
          notTTYSchedule: 1000,
        });
        let started = false;
        const { target, close } = await openDirect(location);
        try {
          const result = await rebuildProjections(target, {
            config,
            batchSize,
            ...(opts.restart ? { restart: true } : {}),
            signal: controller.signal,
            onProgress: ({ done, total }) => {
              if (!started) bar.start(total, done);
              started = true;
              bar.setTotal(total);
              bar.update(done);
            },
          });
          bar.stop();
          process.stdout.write(
            `rebuilt ${config.entities.map((e) => e.table).join(', ') || 'no tables (PROJECTIONS=none)'} from ${result.done} event(s)${result.resumed ? ' (resumed)' : ''}\n`,
          );
        } catch (error) {
          bar.stop();
          if (!controller.signal.aborted) throw error;
          process.stdout.write('interrupted; run the same command again to resume\n');
          process.exitCode = 130;
        } finally {
          process.off('SIGINT', onSignal);
          process.off('SIGTERM', onSignal);
          await close();
        }
      },
    );
  command
    .command('export')
    .description('stream a reporting table to stdout, ordered by its key (e.g. procureiq_orders or orders)')
    .argument('<table>', 'the table, or its entity name')
    .addOption(dbOption())
    .addOption(new Option('--format <format>', 'csv (with a header row) or ndjson').default('csv'))
    .action(async (table: string, opts: { db?: string; format: string }) => {
      if (!EXPORT_FORMATS.includes(opts.format as ExportFormat))
        throw new InputError(`--format must be one of ${EXPORT_FORMATS.join(', ')}, not "${opts.format}"`);
      // Applies pending migrations (0004 creates the tables) and refuses a SQLite file that does not exist.
      await withStore(opts.db, async () => {});
      await exportTable(cliDatabase(opts.db), table, opts.format as ExportFormat, process.stdout);
    });
  return command;
}

/** The inbox's database, opened directly for a bulk rebuild. */
async function openDirect(
  location: ReturnType<typeof parseDatabaseUrl>,
): Promise<{ target: ProjectionDatabase; close: () => Promise<void> }> {
  if (location.kind === 'sqlite') {
    const db = new Database(location.path, { fileMustExist: true });
    db.pragma('journal_mode = WAL');
    db.pragma('busy_timeout = 5000');
    return { target: { dialect: 'sqlite', db }, close: async () => void db.close() };
  }
  const schema = inboxSchema(location.schema);
  const client = new pg.Client({ connectionString: location.url, options: `-c search_path=${schema}` });
  await client.connect();
  return { target: { dialect: 'postgres', client }, close: () => client.end() };
}
