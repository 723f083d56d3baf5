import type { Consumer } from '../consumer.ts';
import { ConfigError } from '../util/errors.ts';
import { loadDefaultExport } from '../util/load-module.ts';
import type { HandlerMap } from '../worker/handlers.ts';

/**
 * Loads a handlers file (`.ts` or `.js`, no build step) and registers what it exports by default:
 * a map of event types to handlers (`'*'` for any other type), or a function that receives the
 * consumer and registers handlers itself.
 */
export async function loadHandlers(file: string, consumer: Consumer): Promise<void> {
  const { path, exported } = await loadDefaultExport(file, 'HANDLERS (--handlers)');
  if (typeof exported === 'function') {
    await (exported as (c: Consumer) => unknown)(consumer);
    return;
  }
  if (exported && typeof exported === 'object') {
    for (const [type, handler] of Object.entries(exported)) {
      if (typeof handler !== 'function') {
        throw new ConfigError(
          `HANDLERS (--handlers): the handler for "${type}" in ${path} is not a function`,
        );
      }
    }
    consumer.use(exported as HandlerMap);
    return;
  }
  throw new ConfigError(
    `HANDLERS (--handlers): ${path} must export default a map of event types to handlers, or a function that receives the consumer`,
  );
}
