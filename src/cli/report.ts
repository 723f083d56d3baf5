import { type Command, Option } from 'commander';
import { parseEnvironment, parseTime } from '../ops/filters.ts';
import { openEntityReader } from '../projections/read-entity.ts';
import { reportCsv, reportText } from '../reports/format.ts';
import { buildReport } from '../reports/report.ts';
import { ConfigError } from '../util/errors.ts';
import { cliDatabase, dbOption, withStore } from './open-cli-store.ts';

/**
 * `report [--since 7d] [--environment E] [--json | --csv]`: the reporting tables summed up by
 * section (which window each figure uses: see ReportQuery).
 */
export function registerReport(program: Command): void {
  program
    .command('report')
    .description('orders, payments, products, users, support, ads and searches from the reporting tables')
    .addOption(dbOption())
    .option(
      '--since <time>',
      'what happened since then (statuses: entities whose latest event is since then): a duration ago (7d) or an ISO time',
      '7d',
    )
    .option('--environment <env>', 'production or sandbox (default: both)')
    .addOption(new Option('--json', 'print the report as JSON').conflicts('csv'))
    .addOption(new Option('--csv', 'print section,metric,key,value rows').conflicts('json'))
    .action(
      async (opts: { db?: string; since: string; environment?: string; json?: boolean; csv?: boolean }) => {
        const since = parseTime(opts.since, '--since');
        const environment = parseEnvironment(opts.environment ?? null);
        const location = cliDatabase(opts.db);
        if (location.kind === 'sqlite' && location.path === ':memory:')
          throw new ConfigError('report needs a database file or PostgreSQL, not sqlite::memory:');
        // Applies pending migrations (0004 creates the tables) and refuses a SQLite file that does not exist.
        await withStore(opts.db, async () => {});
        const reader = openEntityReader(location);
        try {
          const report = await buildReport(reader, { since, environment });
          process.stdout.write(
            opts.json
              ? `${JSON.stringify(report, null, 2)}\n`
              : opts.csv
                ? reportCsv(report)
                : reportText(report),
          );
        } finally {
          await reader.close();
        }
      },
    );
}
