import { didYouMean, RoutesConfigError } from './problems.ts';

/**
 * `where` filters: a JSON filter over the parsed envelope, compiled once into a predicate.
 *
 * - Keys are dotted paths into the envelope (`data.totalAmount`, `metadata.environment`); a
 *   numeric segment indexes an array (`data.lineItems.0.sku`). Only own properties are read, and
 *   there is no implicit "any element of an array" matching.
 * - A bare value means `$eq`; several keys (or several operators on one path) must all hold.
 * - Field operators: `$eq $ne $in $nin $gt $gte $lt $lte $exists $startsWith $endsWith`, and `$not`
 *   over a condition (`{ data.status: { $not: { $in: [a, b] } } }`).
 * - Logical operators at the top of any filter: `$and: [filters]`, `$or: [filters]`,
 *   `$not: filter`.
 *
 * Types are never coerced: values compare only with values of the same JSON type. `$gt 500` never
 * matches the string `"600"`, `$eq "5"` never matches the number `5`. Ordering operators take a
 * number or a string (strings compare by UTF-16 code units, so ISO-8601 timestamps in the same
 * format order correctly). `$eq null` matches an explicit `null` only; a missing field is `$exists:
 * false`. `$ne` and `$nin` are the negations of `$eq` and `$in`, so they also match a missing field.
 *
 * @example
 * const isBig = compileWhere({ 'data.totalAmount': { $gte: 500 }, 'data.currency': 'EUR' });
 * isBig(envelope); // true or false, no re-parsing
 */
export type EnvelopePredicate = (envelope: unknown) => boolean;
type ValueTest = (value: unknown) => boolean;
type Scalar = string | number | boolean | null;

const FIELD_OPERATORS = [
  '$eq',
  '$ne',
  '$in',
  '$nin',
  '$gt',
  '$gte',
  '$lt',
  '$lte',
  '$exists',
  '$startsWith',
  '$endsWith',
  '$not',
] as const;
const LOGICAL_OPERATORS = ['$and', '$or', '$not'] as const;
const EXAMPLE = 'e.g. { data.totalAmount: { $gte: 500 } }';

/**
 * Compiles a filter. With `problems`, every problem is appended there (each prefixed by its path)
 * and a predicate is still returned; without, the first compile throws a `RoutesConfigError`
 * listing all of them.
 */
export function compileWhere(filter: unknown, path = 'where', problems?: string[]): EnvelopePredicate {
  const found: string[] = problems ?? [];
  const before = found.length;
  const predicate = compileFilter(filter, path, found);
  if (!problems && found.length > before) throw new RoutesConfigError(found);
  return predicate;
}

/** True for a dotted path whose segments are all non-empty (`data.orderId`). */
export function isDottedPath(path: string): boolean {
  return path !== '' && path.split('.').every((s) => s !== '' && s.trim() === s);
}

/** Compiles a dotted path into a reader: the value there, or undefined when any step is missing. */
export function compilePath(path: string): (root: unknown) => unknown {
  const segments = path.split('.');
  return (root) => {
    let current: unknown = root;
    for (const segment of segments) {
      if (Array.isArray(current)) {
        if (!/^\d+$/.test(segment)) return undefined;
        current = current[Number(segment)];
      } else if (typeof current === 'object' && current !== null && Object.hasOwn(current, segment)) {
        current = (current as Record<string, unknown>)[segment];
      } else {
        return undefined;
      }
    }
    return current;
  };
}

function compileFilter(filter: unknown, path: string, problems: string[]): EnvelopePredicate {
  if (!isPlainObject(filter)) {
    problems.push(`${path}: must be an object of conditions, ${EXAMPLE}`);
    return () => false;
  }
  const parts: EnvelopePredicate[] = [];
  for (const [key, value] of Object.entries(filter)) {
    const at = `${path}.${key}`;
    if (key === '$and' || key === '$or') {
      if (!Array.isArray(value) || value.length === 0) {
        problems.push(`${at}: must be a non-empty list of filters, e.g. [{ type: order.created }, …]`);
        continue;
      }
      const subs = value.map((sub, i) => compileFilter(sub, `${at}[${i}]`, problems));
      parts.push(key === '$and' ? (e) => subs.every((s) => s(e)) : (e) => subs.some((s) => s(e)));
    } else if (key === '$not') {
      const sub = compileFilter(value, at, problems);
      parts.push((e) => !sub(e));
    } else if (key.startsWith('$')) {
      if ((FIELD_OPERATORS as readonly string[]).includes(key)) {
        problems.push(`${at}: "${key}" compares a field; put it under a path, ${EXAMPLE}`);
      } else {
        problems.push(`${at}: unknown operator "${key}"${didYouMean(key, LOGICAL_OPERATORS)}`);
      }
    } else if (!isDottedPath(key)) {
      problems.push(`${at}: "${key}" is not a dotted path, e.g. "data.totalAmount"`);
    } else {
      const read = compilePath(key);
      const test = compileCondition(value, at, problems);
      parts.push((e) => test(read(e)));
    }
  }
  if (parts.length === 1) return parts[0]!;
  return (e) => parts.every((p) => p(e));
}

function compileCondition(condition: unknown, path: string, problems: string[]): ValueTest {
  if (isScalar(condition)) return (v) => v === condition;
  if (Array.isArray(condition)) {
    problems.push(`${path}: a list is not a condition; to match any of several values use { $in: [...] }`);
    return () => false;
  }
  if (!isPlainObject(condition)) {
    problems.push(`${path}: must be a value or an object of operators`);
    return () => false;
  }
  const entries = Object.entries(condition);
  if (entries.length === 0) {
    problems.push(`${path}: an empty condition; give a value or operators, e.g. { $gte: 500 }`);
    return () => false;
  }
  const tests: ValueTest[] = [];
  for (const [op, operand] of entries) {
    const test = compileOperator(op, operand, `${path}.${op}`, path, problems);
    if (test) tests.push(test);
  }
  if (tests.length === 1) return tests[0]!;
  return (v) => tests.every((t) => t(v));
}

function compileOperator(
  op: string,
  operand: unknown,
  at: string,
  fieldPath: string,
  problems: string[],
): ValueTest | undefined {
  const fail = (message: string): undefined => {
    problems.push(`${at}: ${message}, not ${describe(operand)}`);
    return undefined;
  };
  switch (op) {
    case '$eq':
      if (!isScalar(operand)) return fail('must be a string, number, boolean or null');
      return (v) => v === operand;
    case '$ne':
      if (!isScalar(operand)) return fail('must be a string, number, boolean or null');
      return (v) => v !== operand;
    case '$in':
    case '$nin': {
      if (!Array.isArray(operand) || operand.length === 0 || !operand.every(isScalar)) {
        return fail('must be a non-empty list of strings, numbers, booleans or nulls');
      }
      const set = new Set<unknown>(operand);
      return op === '$in' ? (v) => set.has(v) : (v) => !set.has(v);
    }
    case '$gt':
    case '$gte':
    case '$lt':
    case '$lte': {
      if (!(typeof operand === 'string' || (typeof operand === 'number' && Number.isFinite(operand)))) {
        return fail('must be a number or a string');
      }
      const kind = typeof operand;
      const bound = operand as string | number;
      if (op === '$gt') return (v) => typeof v === kind && (v as string | number) > bound;
      if (op === '$gte') return (v) => typeof v === kind && (v as string | number) >= bound;
      if (op === '$lt') return (v) => typeof v === kind && (v as string | number) < bound;
      return (v) => typeof v === kind && (v as string | number) <= bound;
    }
    case '$exists':
      if (typeof operand !== 'boolean') return fail('must be true or false');
      return operand ? (v) => v !== undefined : (v) => v === undefined;
    case '$startsWith':
    case '$endsWith': {
      if (typeof operand !== 'string') return fail('must be a string');
      return op === '$startsWith'
        ? (v) => typeof v === 'string' && v.startsWith(operand)
        : (v) => typeof v === 'string' && v.endsWith(operand);
    }
    case '$not': {
      const inner = compileCondition(operand, at, problems);
      return (v) => !inner(v);
    }
    default:
      if (!op.startsWith('$')) {
        problems.push(
          `${at}: "${op}" is not an operator; to reach a nested field make it part of the key, e.g. "${fieldPath.split('.').pop()}.${op}"`,
        );
      } else if (op === '$and' || op === '$or') {
        problems.push(`${at}: "${op}" combines filters; use it at the top of where, not under a field`);
      } else {
        problems.push(`${at}: unknown operator "${op}"${didYouMean(op, FIELD_OPERATORS)}`);
      }
      return undefined;
  }
}

function isScalar(value: unknown): value is Scalar {
  return (
    value === null ||
    typeof value === 'string' ||
    typeof value === 'boolean' ||
    (typeof value === 'number' && Number.isFinite(value))
  );
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return false;
  const proto = Object.getPrototypeOf(value);
  return proto === Object.prototype || proto === null;
}

function describe(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'a list';
  if (typeof value === 'object') return 'an object';
  if (typeof value === 'string') return `the string ${JSON.stringify(value)}`;
  return `${typeof value} ${String(value)}`;
}
