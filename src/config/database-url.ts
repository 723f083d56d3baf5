import { isAbsolute, resolve } from 'node:path';
import { ConfigError } from '../util/errors.ts';
import { defaults } from './defaults.ts';

export type DatabaseLocation =
  | { kind: 'sqlite'; path: string }
  | { kind: 'postgres'; url: string; schema: string | undefined };

/**
 * Parses `DATABASE_URL`: `sqlite:./data/x.db`, `sqlite:/abs/x.db`, `sqlite::memory:`, or
 * `postgres://user@host/db` (with `?schema=name` for the inbox's schema; default
 * `procureiq_webhooks`).
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
  if (text.startsWith('postgres://') || text.startsWith('postgresql://')) {
    // `?schema=name` picks the schema for the inbox's tables; the driver does not see it.
    let url: URL;
    try {
      url = new URL(text);
    } catch {
      throw new ConfigError(`DATABASE_URL: "${redactUrl(text)}" is not a valid URL`);
    }
    // The driver lets `options` in the URL replace the store's own session settings: the schema's
    // search_path (tables went to public) and synchronous_commit=on.
    if (url.searchParams.has('options'))
      throw new ConfigError(
        'DATABASE_URL: "options" is not supported: it would replace the session settings the store needs (search_path, synchronous_commit=on); give the schema with ?schema=NAME',
      );
    const schema = url.searchParams.get('schema') ?? undefined;
    if (schema === '')
      throw new ConfigError('DATABASE_URL: ?schema= is empty; name the schema, or leave the parameter out');
    url.searchParams.delete('schema');
    return { kind: 'postgres', url: url.toString(), schema };
  }
  throw new ConfigError(
    `DATABASE_URL: "${redactUrl(text)}" is not supported; use "sqlite:./path/to/file.db" or "postgres://user@host:5432/db"`,
  );
}

/**
 * The PostgreSQL schema of the inbox's tables (`?schema=`, else the default), checked to be a
 * plain lower-case identifier, since it is spliced into SQL.
 */
export function inboxSchema(schema: string | undefined): string {
  const name = schema ?? defaults.postgresSchema;
  if (!/^[a-z_][a-z0-9_]{0,62}$/.test(name))
    throw new ConfigError(`DATABASE_URL: schema "${name}" must be a lower-case SQL identifier (a-z, 0-9, _)`);
  return name;
}

/** Hides a password in a URL before it is shown or logged. */
export function redactUrl(url: string): string {
  return url.replace(/\/\/([^:/@]+):[^@/]*@/, '//$1:***@');
}
