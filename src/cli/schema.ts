import type { Command } from 'commander';
import { catalogueJsonSchema } from '../events/catalogue.ts';

export function registerSchema(program: Command): void {
  program
    .command('schema')
    .description('print the ProcureIQ event catalogue as JSON Schema')
    .action(() => {
      process.stdout.write(`${JSON.stringify(catalogueJsonSchema(), null, 2)}\n`);
    });
}
