import type { Logger } from '../logging/logger.ts';
import type { Environment, InboxStore, SecretUse } from '../store/inbox-store.ts';
import { toError } from '../util/errors.ts';

/**
 * Remembers when each secret last verified a delivery and writes it to the store every few
 * seconds (not once per delivery), so rotation can be checked from the dashboard or the API.
 */
export function createSecretUsageTracker(store: InboxStore, logger: Logger, flushEveryMs = 5000) {
  const latest = new Map<string, SecretUse>();
  let timer: NodeJS.Timeout | undefined;
  const flush = async () => {
    if (latest.size === 0) return;
    const uses = [...latest.values()];
    latest.clear();
    try {
      await store.recordSecretUse(uses);
    } catch (error) {
      logger.warn({ err: toError(error).message }, 'could not record secret usage');
    }
  };
  return {
    used(environment: Environment, secretIndex: number, at: number) {
      latest.set(`${environment}:${secretIndex}`, { environment, secretIndex, lastVerifiedAt: at });
      timer ??= setTimeout(() => {
        timer = undefined;
        void flush();
      }, flushEveryMs);
    },
    async close() {
      if (timer) clearTimeout(timer);
      timer = undefined;
      await flush();
    },
  };
}
