import { isAbsolute, resolve } from 'node:path';
import { ConfigError } from '../util/errors.ts';

export type DatabaseLocation = { kind: 'sqlite'; path: string } | { kind: 'postgres'; url: string };

/**
 * Parses `DATABASE_URL`: `sqlite:./data/x.db`, `sqlite:/abs/x.db`, `sqlite::memory:`, or
 * `postgres://user@host/db`.
 */
export function parseDatabaseUrl(input: string, cwd = process.cwd()): DatabaseLocation {
  const text = input.trim();
  if (text.startsWith('sqlite:')) {
    let path = text.slice('sqlite:'.length);
    if (path.startsWith('//')) path = path.slice(2);
    if (path === '')
      throw new ConfigError('DATABASE_URL: "sqlite:" needs a file path, e.g. "sqlite:./data/inbox.db"');
    if (path === ':memory:') return { kind: 'sqlite', path };
    return { kind: 'sqlite', path: isAbsolute(path) ? path : resolve(cwd, path) };
  }
  if (text.startsWith('postgres://') || text.startsWith('postgresql://'))
    return { kind: 'postgres', url: text };
  throw new ConfigError(
    `DATABASE_URL: "${redactUrl(text)}" is not supported; use "sqlite:./path/to/file.db" or "postgres://user@host:5432/db"`,
  );
}

/** Hides a password in a URL before it is shown or logged. */
export function redactUrl(url: string): string {
  return url.replace(/\/\/([^:/@]+):[^@/]*@/, '//$1:***@');
}
