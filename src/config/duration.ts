import { ConfigError } from '../util/errors.ts';

const UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };
const DURATION = /^(\d+(?:\.\d+)?)(ms|s|m|h|d)$/;

/**
 * Parses a duration with a unit (`500ms`, `30s`, `2m`, `1h`, `7d`) into milliseconds.
 * A bare number is refused: `30` could mean seconds or milliseconds, and guessing wrong at
 * 3 a.m. is worse than a start-up error.
 */
export function parseDuration(input: string, name = 'duration'): number {
  const text = input.trim();
  const match = DURATION.exec(text);
  if (!match?.[1] || !match[2]) {
    const hint = /^\d+(\.\d+)?$/.test(text) ? ` (add a unit, e.g. "${text}s" or "${text}ms")` : '';
    throw new ConfigError(
      `${name}: "${input}" is not a duration${hint}; write a number with a unit: ms, s, m, h or d, e.g. "30s"`,
    );
  }
  return Math.round(Number(match[1]) * (UNITS[match[2]] ?? 1));
}

/** The longest delay a Node timer takes (about 24.8 days); a longer one fires after 1 ms. */
export const MAX_TIMER_MS = 2_147_483_647;

/**
 * Refuses a duration that runs on a timer and is longer than Node's timers take: it would fire at
 * once (every handler timed out after 1 ms; a 25-day poll interval spun the CPU).
 */
export function checkTimerDuration(ms: number, name: string): number {
  if (ms > MAX_TIMER_MS)
    throw new ConfigError(
      `${name}: at most ${MAX_TIMER_MS} ms (about 24 days), which Node's timers can wait`,
    );
  return ms;
}

/** Parses a comma-separated list of durations, e.g. a retry schedule `30s,2m,10m`. */
export function parseDurationList(input: string, name: string): number[] {
  const parts = input
    .split(',')
    .map((p) => p.trim())
    .filter((p) => p !== '');
  return parts.map((p) => parseDuration(p, name));
}

const SIZE_UNITS: Record<string, number> = { b: 1, kb: 1024, mb: 1024 * 1024 };
const SIZE = /^(\d+)(b|kb|mb)$/i;

/** Parses a byte size with a unit (`512kb`, `1mb`). */
export function parseSize(input: string, name = 'size'): number {
  const match = SIZE.exec(input.trim());
  if (!match?.[1] || !match[2]) {
    throw new ConfigError(
      `${name}: "${input}" is not a size; write a number with a unit: b, kb or mb, e.g. "1mb"`,
    );
  }
  return Number(match[1]) * (SIZE_UNITS[match[2].toLowerCase()] ?? 1);
}
