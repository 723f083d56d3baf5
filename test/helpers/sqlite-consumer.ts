import { join } from 'node:path';
import { type ConsumerOptions, createConsumer } from '../../src/consumer.ts';
import { silentLogger } from '../../src/logging/logger.ts';
import { SECRET, tempDir } from './index.ts';

/** A consumer on a SQLite file of its own; `dispose` closes it and removes the file. */
export function openSqliteConsumer(options: Omit<ConsumerOptions, 'secret' | 'database'>) {
  const tmp = tempDir();
  const path = join(tmp.dir, 'inbox.db');
  const consumer = createConsumer({
    secret: SECRET,
    database: `sqlite:${path}`,
    logger: silentLogger(),
    ...options,
  });
  return {
    consumer,
    path,
    dispose: async () => {
      await consumer.close();
      tmp.cleanup();
    },
  };
}
