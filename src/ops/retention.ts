import { defaults } from '../config/defaults.ts';
import { parseDuration } from '../config/duration.ts';
import type { Logger } from '../logging/logger.ts';
import type { InboxStore } from '../store/inbox-store.ts';
import { toError } from '../util/errors.ts';

/**
 * Retention: every minute, purges the payloads and attempt logs of processed events older than
 * `retentionMs`, 500 at a time with a pause between batches, so ingest never waits behind it.
 * Dedupe keys stay; dead and invalid events are never purged.
 */
export function createRetention(
  store: InboxStore,
  logger: Logger,
  retentionMs: number,
  everyMs = parseDuration(defaults.retentionInterval),
) {
  let timer: NodeJS.Timeout | undefined;
  let stopped = false;
  const run = async () => {
    let total = 0;
    try {
      for (let n = 1; n > 0 && !stopped; ) {
        n = await store.purgeProcessed(Date.now() - retentionMs, defaults.retentionBatch);
        total += n;
        if (n > 0) await new Promise((r) => setTimeout(r, 50));
      }
      if (total > 0)
        logger.info({ purged: total, retentionMs }, 'retention: purged payloads of old processed events');
    } catch (error) {
      logger.warn({ err: toError(error).message }, 'retention run failed; will try again');
    }
    if (!stopped) timer = setTimeout(() => void run(), everyMs);
  };
  return {
    start() {
      if (!timer && !stopped) timer = setTimeout(() => void run(), Math.min(everyMs, 1000));
    },
    stop() {
      stopped = true;
      if (timer) clearTimeout(timer);
    },
  };
}
