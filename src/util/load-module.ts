import { existsSync } from 'node:fs';
import { extname, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { ConfigError } from './errors.ts';

/** TypeScript files, loaded through tsx. */
export const TS_EXTENSIONS: ReadonlySet<string> = new Set(['.ts', '.mts', '.cts']);

/**
 * Loads a user's module and answers its default export: TypeScript through tsx, so users need no
 * build step; JavaScript as it is. A CommonJS or transpiled module that wraps its default export
 * once more is unwrapped. `label` names the option in the error when the file is missing.
 */
export async function loadDefaultExport(
  file: string,
  label: string,
): Promise<{ path: string; exported: unknown }> {
  const path = resolve(file);
  if (!existsSync(path)) throw new ConfigError(`${label}: no file at ${path}`);
  const module = (
    TS_EXTENSIONS.has(extname(path))
      ? await (await import('tsx/esm/api')).tsImport(pathToFileURL(path).href, import.meta.url)
      : await import(pathToFileURL(path).href)
  ) as { default?: unknown };
  let exported = module.default;
  if (
    exported &&
    typeof exported === 'object' &&
    'default' in exported &&
    Object.keys(exported).length === 1
  ) {
    exported = (exported as { default: unknown }).default;
  }
  return { path, exported };
}
