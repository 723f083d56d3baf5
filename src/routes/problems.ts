import { ConfigError } from '../util/errors.ts';

/**
 * A routes file that cannot be used. Every problem is collected before throwing, each naming its
 * path in the file (`routes[1].to: no destination "fulfilmnet" (did you mean "fulfilment"?)`), so
 * one start-up shows everything to fix. A `ConfigError`, so the CLI reports it like any other
 * configuration error.
 */
export class RoutesConfigError extends ConfigError {
  readonly problems: string[];
  constructor(problems: string[], source?: string) {
    const where = source ? `routes file ${source}` : 'routes';
    super(`invalid ${where}:\n  - ${problems.join('\n  - ')}`);
    this.problems = problems;
  }
}

/**
 * The closest candidate to `word` (optimal string alignment distance, so a swapped pair of letters
 * counts as one edit), or undefined when nothing is close enough to be a likely typo.
 */
export function closest(word: string, candidates: Iterable<string>): string | undefined {
  let best: string | undefined;
  let bestDistance = Number.POSITIVE_INFINITY;
  for (const candidate of candidates) {
    const d = distance(word.toLowerCase(), candidate.toLowerCase());
    if (d < bestDistance) {
      best = candidate;
      bestDistance = d;
    }
  }
  if (best === undefined) return undefined;
  const allowed = Math.min(3, Math.max(1, Math.floor(best.length / 3)));
  return bestDistance <= allowed ? best : undefined;
}

/** ` (did you mean "x"?)`, or the empty string when nothing is close. */
export function didYouMean(word: string, candidates: Iterable<string>): string {
  const guess = closest(word, candidates);
  return guess === undefined ? '' : ` (did you mean "${guess}"?)`;
}

function distance(a: string, b: string): number {
  const rows = a.length + 1;
  const cols = b.length + 1;
  const d: number[][] = Array.from({ length: rows }, (_, i) =>
    Array.from({ length: cols }, (_, j) => (i === 0 ? j : j === 0 ? i : 0)),
  );
  for (let i = 1; i < rows; i++) {
    const row = d[i]!;
    const prev = d[i - 1]!;
    for (let j = 1; j < cols; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let v = Math.min(prev[j]! + 1, row[j - 1]! + 1, prev[j - 1]! + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) {
        v = Math.min(v, d[i - 2]![j - 2]! + 1);
      }
      row[j] = v;
    }
  }
  return d[rows - 1]![cols - 1]!;
}
