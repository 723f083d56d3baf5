import {
  defaultText,
  longFlag,
  type ServeOption,
  type ServeSwitch,
  serveOptions,
  serveSwitches,
} from './options.ts';

/** The README's options table sits between these two lines. */
export const TABLE_START =
  '<!-- options-table:start generated from src/config/options.ts: node --import tsx scripts/options-table.ts -->';
export const TABLE_END = '<!-- options-table:end -->';

/** The options of `serve` as a Markdown table, one row per option, in the table's order. */
export function renderOptionsTable(): string {
  const rows: string[][] = [
    ...(Object.values(serveOptions) as ServeOption<unknown>[]).map((o) => [
      `\`${longFlag(o)}\``,
      `\`${o.env}\``,
      defaultText(o) ?? 'none',
      o.description,
    ]),
    ...(Object.values(serveSwitches) as ServeSwitch[]).map((o) => [
      `\`${o.flag}\``,
      '',
      o.defaultText,
      o.description,
    ]),
  ];
  const header = ['flag', 'env var', 'default', 'description'];
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]) => `| ${cells.map((c, i) => c.padEnd(widths[i] ?? 0)).join(' | ')} |`;
  return [line(header), `| ${widths.map((w) => '-'.repeat(w)).join(' | ')} |`, ...rows.map(line)].join('\n');
}

/**
 * The README with its options table replaced by `table`. Throws when the markers are missing, so
 * a README that lost them is noticed rather than left behind.
 */
export function withOptionsTable(readme: string, table = renderOptionsTable()): string {
  const start = readme.indexOf(TABLE_START);
  const end = readme.indexOf(TABLE_END);
  if (start === -1 || end === -1 || end < start) {
    throw new Error(`README.md: the options table must sit between "${TABLE_START}" and "${TABLE_END}"`);
  }
  return `${readme.slice(0, start + TABLE_START.length)}\n\n${table}\n\n${readme.slice(end)}`;
}
