/**
 * Event-type globs: `*` stands for any run of characters (dots included), everything else is
 * literal. `*` alone matches every type, known to the catalogue or not; `order.*` a family;
 * `order.created` exactly that type.
 */
export type TypeMatcher = (type: string) => boolean;

/** Characters a type glob may contain: those of event types, plus `*`. */
export const GLOB_PATTERN = /^[A-Za-z0-9_.*-]+$/;

/** Compiles one glob to a predicate, once. */
export function compileGlob(glob: string): TypeMatcher {
  if (glob === '*') return () => true;
  if (!glob.includes('*')) return (type) => type === glob;
  const source = glob
    .split('*')
    .map((part) => part.replace(/[.+?^${}()|[\]\\-]/g, '\\$&'))
    .join('.*');
  const regex = new RegExp(`^${source}$`, 's');
  return (type) => regex.test(type);
}

/** Compiles a list of globs: a type matches when any of them does. */
export function compileGlobs(globs: readonly string[]): TypeMatcher {
  if (globs.includes('*')) return () => true;
  const matchers = globs.map(compileGlob);
  if (matchers.length === 1) return matchers[0]!;
  return (type) => matchers.some((m) => m(type));
}
