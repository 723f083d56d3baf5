/**
 * The delay before the attempt after `failedAttempt` (1-based): the schedule's entry for it. Give
 * `maxAttempts` (the attempt budget) and attempts granted beyond the schedule's own (a shutdown
 * gives its attempt back, an operator's replay gives a fresh budget) start the schedule over, so a
 * shutdown no longer pushed every later retry one entry along (30s, 2m, 10m became 2m, 10m, 10m),
 * and a replayed event retries on the schedule rather than at its last entry. Past its end, the
 * last entry.
 *
 * Jitter only ever lengthens a delay, by at most 10%: a schedule is a promise of "not before".
 */
export function retryDelay(
  schedule: readonly number[],
  failedAttempt: number,
  random: () => number = Math.random,
  maxAttempts?: number,
): number {
  if (schedule.length === 0) return 0;
  const granted = maxAttempts === undefined ? 0 : Math.max(0, maxAttempts - (schedule.length + 1));
  const index = Math.min(Math.max(failedAttempt - 1 - granted, 0), schedule.length - 1);
  const base = schedule[index] ?? 0;
  return Math.round(base * (1 + 0.1 * Math.min(Math.max(random(), 0), 1)));
}
