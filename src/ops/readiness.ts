import type { Logger } from '../logging/logger.ts';
import type { InboxStore } from '../store/inbox-store.ts';
import { MigrationsBehindError, StoreUnavailableError, toError } from '../util/errors.ts';

/**
 * The `/readyz` check: pings the store. The store's own error text (hosts, users, schema names)
 * goes to the log only; `/readyz` is often public, so it answers with a generic reason. Migrations
 * that are behind are named, since that text is ours and says what to run.
 */
export function storeReadiness(store: InboxStore, logger: Logger): () => Promise<void> {
  return async () => {
    try {
      await store.ping();
    } catch (error) {
      if (error instanceof MigrationsBehindError) throw error;
      logger.warn({ err: toError(error) }, 'not ready: the store did not answer a ping');
      throw new StoreUnavailableError('the store is not reachable; the service log has the details');
    }
  };
}
