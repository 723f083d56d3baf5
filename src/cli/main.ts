import { readFileSync } from 'node:fs';
import { Command, CommanderError } from 'commander';
import { RoutesConfigError } from '../routes/problems.ts';
import { ProcureIqWebhooksError } from '../util/errors.ts';
import { registerDeadLetter } from './dead-letter.ts';
import { registerDeliveries } from './deliveries.ts';
import { registerEvents } from './events.ts';
import { registerExportImport } from './export-import.ts';
import { registerMigrate } from './migrate.ts';
import { projectionsCommand } from './projections.ts';
import { registerReplay } from './replay.ts';
import { registerReport } from './report.ts';
import { registerRoutes } from './routes.ts';
import { registerSchema } from './schema.ts';
import { registerSend } from './send.ts';
import { registerServe } from './serve.ts';

const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as {
  version: string;
};

export function buildProgram(): Command {
  const program = new Command('procureiq-webhooks')
    .description(
      'Self-hosted consumer for ProcureIQ webhooks: verify, store durably, process once, retry, dead-letter.',
    )
    .version(pkg.version)
    .showHelpAfterError('(run with --help for usage)')
    .exitOverride();
  registerServe(program);
  registerSend(program);
  registerEvents(program);
  registerDeadLetter(program);
  registerReplay(program);
  registerRoutes(program);
  registerDeliveries(program);
  registerExportImport(program);
  registerMigrate(program);
  registerSchema(program);
  program.addCommand(projectionsCommand());
  registerReport(program);
  return program;
}

export async function main(argv: string[]): Promise<void> {
  try {
    await buildProgram().parseAsync(argv);
  } catch (error) {
    if (error instanceof CommanderError) {
      process.exitCode = error.exitCode;
      return;
    }
    if (error instanceof ProcureIqWebhooksError) {
      process.stderr.write(`procureiq-webhooks: ${error.message}\n`);
      // A routes file that cannot be used exits 1 from every command, as `serve` does at start-up
      // (the routes issue's contract); other usage and configuration errors exit 2.
      process.exitCode = error instanceof RoutesConfigError ? 1 : 2;
      return;
    }
    process.stderr.write(
      `procureiq-webhooks: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`,
    );
    process.exitCode = 1;
  }
}
