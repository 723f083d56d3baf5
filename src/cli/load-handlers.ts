import { existsSync } from 'node:fs';
import { extname, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import type { Consumer } from '../consumer.ts';
import { ConfigError } from '../util/errors.ts';
import type { HandlerMap } from '../worker/handlers.ts';

/**
 * Loads a handlers file (`.ts` or `.js`, no build step) and registers what it exports by default:
 * a map of event types to handlers (`'*'` for any other type), or a function that receives the
 * consumer and registers handlers itself.
 */
export async function loadHandlers(file: string, consumer: Consumer): Promise<void> {
  const path = resolve(file);
  if (!existsSync(path)) throw new ConfigError(`HANDLERS (--handlers): no file at ${path}`);
  const ext = extname(path);
  let module: { default?: unknown };
  if (ext === '.ts' || ext === '.mts' || ext === '.cts') {
    // TypeScript loads through tsx, so users need no build step.
    const { tsImport } = await import('tsx/esm/api');
    module = (await tsImport(pathToFileURL(path).href, import.meta.url)) as { default?: unknown };
  } else {
    module = (await import(pathToFileURL(path).href)) as { default?: unknown };
  }
  let exported = module.default;
  // A CommonJS or transpiled module may wrap its default export once more.
  if (
    exported &&
    typeof exported === 'object' &&
    'default' in exported &&
    Object.keys(exported).length === 1
  ) {
    exported = (exported as { default: unknown }).default;
  }
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
