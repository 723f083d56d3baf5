import { createReadStream } from 'node:fs';
import { createInterface } from 'node:readline';
import { type Command, Option } from 'commander';
import { validateKnownEvent } from '../events/catalogue.ts';
import { envelopeKeyProblem } from '../events/envelope.ts';
import { projectionJobs } from '../projections/jobs.ts';
import { resolveProjectionsConfig } from '../projections/registry.ts';
import { loadRoutesFile } from '../routes/config.ts';
import { routeJobs } from '../routes/route-jobs.ts';
import { type Environment, HANDLERS, type NewJob } from '../store/inbox-store.ts';
import { ConfigError } from '../util/errors.ts';
import { dbOption, retryScheduleMs, retryScheduleOption, withStore } from './open-cli-store.ts';
import { addFilterOptions, type FilterFlags, filterFromFlags, matching } from './replay.ts';
import { routesOption } from './routes.ts';

/** One line of an export: the event as delivered, and where it stood. */
interface ExportedEvent {
  id: string;
  type: string;
  environment: Environment;
  status: string;
  receivedAt: string;
  deliveryId: string | null;
  timestampHeader: string | null;
  /** The raw body, exactly as signed and delivered. */
  body: string;
}

export function registerExportImport(program: Command): void {
  const exportCommand = program
    .command('export')
    .description('write matching events as NDJSON to stdout (back up, move, or re-feed them elsewhere)');
  addFilterOptions(exportCommand)
    .addOption(dbOption())
    .action(async (opts: FilterFlags & { db?: string }) => {
      const filter = filterFromFlags(opts);
      let n = 0;
      await withStore(opts.db, async (store) => {
        for await (const page of matching(store, filter)) {
          for (const summary of page) {
            const event = await store.get(summary.id);
            if (!event) continue;
            const line: ExportedEvent = {
              id: event.id,
              type: event.type,
              environment: event.environment,
              status: event.status,
              receivedAt: new Date(event.receivedAt).toISOString(),
              deliveryId: event.deliveryId,
              timestampHeader: event.timestampHeader,
              body: Buffer.from(event.rawBody).toString('utf8'),
            };
            if (!process.stdout.write(`${JSON.stringify(line)}\n`)) {
              await new Promise((resolve) => process.stdout.once('drain', resolve));
            }
            n++;
          }
        }
      });
      process.stderr.write(`exported ${n} event(s)\n`);
    });

  program
    .command('import')
    .description(
      'store events from an NDJSON export as new events, with the jobs a delivery would get (ids already stored are skipped)',
    )
    .argument('<file>', 'an export file')
    .option('--environment <env>', 'store them under this environment instead of the exported one')
    .addOption(retryScheduleOption())
    .addOption(routesOption())
    .addOption(
      new Option('--projections <list>', 'live tables: all (default), none, or e.g. orders,payments').env(
        'PROJECTIONS',
      ),
    )
    .addOption(dbOption())
    .action(
      async (
        file: string,
        opts: {
          environment?: string;
          db?: string;
          retrySchedule?: string;
          routes?: string;
          projections?: string;
        },
      ) => {
        if (opts.environment && opts.environment !== 'production' && opts.environment !== 'sandbox') {
          throw new ConfigError(`import: --environment "${opts.environment}" must be production or sandbox`);
        }
        const schedule = retryScheduleMs(opts.retrySchedule);
        const budget = 1 + schedule.length;
        // Routes and live tables as `serve` has them: an imported event gets the jobs a delivery
        // would (it got a handlers job only, so it was never routed or projected).
        const routes = opts.routes ? (await loadRoutesFile(opts.routes)).routes : [];
        const projections = resolveProjectionsConfig({ projections: opts.projections });
        const counts = { imported: 0, duplicate: 0, skipped: 0 };
        await withStore(opts.db, async (store) => {
          const lines = createInterface({
            input: createReadStream(file),
            crlfDelay: Number.POSITIVE_INFINITY,
          });
          let lineNo = 0;
          for await (const text of lines) {
            lineNo++;
            if (text.trim() === '') continue;
            const skip = (why: string) => {
              process.stderr.write(`line ${lineNo}: skipped ${why}\n`);
              counts.skipped++;
            };
            let record: ExportedEvent;
            try {
              record = JSON.parse(text) as ExportedEvent;
              if (
                typeof record.id !== 'string' ||
                typeof record.type !== 'string' ||
                typeof record.body !== 'string'
              ) {
                throw new Error('needs string id, type and body');
              }
            } catch (error) {
              skip(`, not an exported event (${String(error)})`);
              continue;
            }
            const idProblem = envelopeKeyProblem(record.id);
            if (record.id === '' || idProblem) {
              skip(`${JSON.stringify(record.id.slice(0, 80))}: its id ${idProblem ?? 'is empty'}`);
              continue;
            }
            const environment = opts.environment ?? record.environment ?? 'production';
            if (environment !== 'production' && environment !== 'sandbox') {
              skip(`${record.id}: environment ${JSON.stringify(environment)} is not production or sandbox`);
              continue;
            }
            if (record.body === '') {
              skip(`${record.id}, its payload was purged by retention`);
              continue;
            }
            let envelope:
              | { created?: unknown; type: string; metadata?: { environment?: unknown } }
              | undefined;
            let validationError: string | null;
            try {
              envelope = JSON.parse(record.body) as NonNullable<typeof envelope>;
              // As the receiver decides it: an event claiming the other environment stays invalid.
              const claimed = envelope.metadata?.environment;
              validationError =
                typeof claimed === 'string' && claimed !== environment
                  ? `metadata.environment is ${JSON.stringify(claimed)} but the event was imported into ${environment}`
                  : validateKnownEvent(envelope);
            } catch {
              validationError = 'payload is not JSON';
            }
            const created = typeof envelope?.created === 'number' ? envelope.created : 0;
            const valid = validationError === null;
            const jobs: NewJob[] = valid
              ? [
                  { consumer: HANDLERS, maxAttempts: budget },
                  ...routeJobs(routes, { type: record.type, environment, envelope }, schedule),
                  ...projectionJobs({ type: record.type, status: 'pending' }, projections, budget),
                ]
              : [];
            const result = await store.insertIfAbsent({
              id: record.id,
              type: record.type,
              environment,
              status: valid ? 'pending' : 'invalid',
              created,
              rawBody: Buffer.from(record.body, 'utf8'),
              deliveryId: record.deliveryId ?? null,
              timestampHeader: record.timestampHeader ?? null,
              receivedAt: Date.now(),
              validationError,
              maxAttempts: budget,
              jobs,
              secretIndex: 0,
              sourceAddress: `import:${file}`,
            });
            counts[result.outcome === 'inserted' ? 'imported' : 'duplicate']++;
          }
        });
        process.stdout.write(
          `imported ${counts.imported} event(s); ${counts.duplicate} already stored${counts.skipped ? `; ${counts.skipped} skipped` : ''}\n`,
        );
      },
    );
}
