import { createReadStream } from 'node:fs';
import { createInterface } from 'node:readline';
import type { Command } from 'commander';
import { validateKnownEvent } from '../events/catalogue.ts';
import type { Environment } from '../store/inbox-store.ts';
import { ConfigError } from '../util/errors.ts';
import { dbOption, replayBudget, retryScheduleOption, withStore } from './open-cli-store.ts';
import { addFilterOptions, type FilterFlags, filterFromFlags, matching } from './replay.ts';

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
    .description('store events from an NDJSON export as new pending events (ids already stored are skipped)')
    .argument('<file>', 'an export file')
    .option('--environment <env>', 'store them under this environment instead of the exported one')
    .addOption(retryScheduleOption())
    .addOption(dbOption())
    .action(async (file: string, opts: { environment?: string; db?: string; retrySchedule?: string }) => {
      if (opts.environment && opts.environment !== 'production' && opts.environment !== 'sandbox') {
        throw new ConfigError(`import: --environment "${opts.environment}" must be production or sandbox`);
      }
      const budget = replayBudget(opts.retrySchedule);
      const counts = { imported: 0, duplicate: 0, skipped: 0 };
      await withStore(opts.db, async (store) => {
        const lines = createInterface({ input: createReadStream(file), crlfDelay: Number.POSITIVE_INFINITY });
        let lineNo = 0;
        for await (const text of lines) {
          lineNo++;
          if (text.trim() === '') continue;
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
            process.stderr.write(`line ${lineNo}: skipped, not an exported event (${String(error)})\n`);
            counts.skipped++;
            continue;
          }
          if (record.body === '') {
            process.stderr.write(
              `line ${lineNo}: skipped ${record.id}, its payload was purged by retention\n`,
            );
            counts.skipped++;
            continue;
          }
          let validationError: string | null = null;
          let created = 0;
          try {
            const parsed = JSON.parse(record.body) as { created?: unknown; type: string };
            created = typeof parsed.created === 'number' ? parsed.created : 0;
            validationError = validateKnownEvent(parsed);
          } catch {
            validationError = 'payload is not JSON';
          }
          const result = await store.insertIfAbsent({
            id: record.id,
            type: record.type,
            environment: (opts.environment ?? record.environment ?? 'production') as Environment,
            status: validationError ? 'invalid' : 'pending',
            created,
            rawBody: Buffer.from(record.body, 'utf8'),
            deliveryId: record.deliveryId ?? null,
            timestampHeader: record.timestampHeader ?? null,
            receivedAt: Date.now(),
            validationError,
            maxAttempts: budget,
            secretIndex: 0,
            sourceAddress: `import:${file}`,
          });
          counts[result.outcome === 'inserted' ? 'imported' : 'duplicate']++;
        }
      });
      process.stdout.write(
        `imported ${counts.imported} event(s); ${counts.duplicate} already stored${counts.skipped ? `; ${counts.skipped} skipped` : ''}\n`,
      );
    });
}
