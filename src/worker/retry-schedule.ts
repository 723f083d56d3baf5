/**
 * The delay before the attempt after `failedAttempt` (1-based): the schedule's entry for it, or its
 * last entry once an operator's replay or a shutdown gave extra attempts.
 *
 * Jitter only ever lengthens a delay, by at most 10%: a schedule is a promise of "not before".
 */
export function retryDelay(
  schedule: readonly number[],
  failedAttempt: number,
  random: () => number = Math.random,
): number {
  if (schedule.length === 0) return 0;
  const base = schedule[Math.min(failedAttempt - 1, schedule.length - 1)] ?? 0;
  return Math.round(base * (1 + 0.1 * Math.min(Math.max(random(), 0), 1)));
}
