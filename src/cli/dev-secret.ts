import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';

/** Where `serve --dev` keeps its generated secret, so restarts and `send` reuse it. */
export const DEV_SECRET_PATH = resolve('data', 'dev-secret');

export function readDevSecret(path = DEV_SECRET_PATH): string | undefined {
  if (!existsSync(path)) return undefined;
  const secret = readFileSync(path, 'utf8').trim();
  return secret === '' ? undefined : secret;
}

/** Reads the dev secret, generating and saving one (mode 600) on first use. */
export function ensureDevSecret(path = DEV_SECRET_PATH): { secret: string; generated: boolean } {
  const existing = readDevSecret(path);
  if (existing) return { secret: existing, generated: false };
  const secret = `whsec_dev_${randomBytes(24).toString('base64url')}`;
  mkdirSync(dirname(path), { recursive: true });
  writeFileSync(path, `${secret}\n`, { mode: 0o600 });
  return { secret, generated: true };
}
