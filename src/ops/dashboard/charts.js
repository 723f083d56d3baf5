// Charts of the dashboard, drawn with uPlot (served by the service from /admin/vendor/ and loaded
// before the modules, as the global `uPlot`). Each chart has real axes with labels and a legend.

export const PALETTE = [
  '#2f5bea',
  '#1f9d55',
  '#c98a00',
  '#8e44ad',
  '#d64545',
  '#16a085',
  '#e67e22',
  '#34495e',
];

const HEIGHT = 220;
// The chart in each container, and what it was built for: new data for the same shape is setData.
const plots = new WeakMap();

const width = (container) => Math.max(300, container.clientWidth || 600);
const niceMax = (max) => (max > 0 ? max * 1.15 : 1);
const plain = (v) => (v === null || v === undefined ? '–' : Number(v).toLocaleString());
/** Tick steps for counts: whole numbers only (no "0.5 orders"). */
const WHOLE_STEPS = [1, 2, 5]
  .flatMap((m) => [1, 10, 100, 1e3, 1e4, 1e5, 1e6].map((p) => m * p))
  .sort((a, b) => a - b);

function place(container, key, opts, data) {
  const existing = plots.get(container);
  if (existing && existing.key === key) {
    existing.plot.setData(data);
    return existing.plot;
  }
  existing?.plot.destroy();
  container.replaceChildren();
  const plot = new uPlot({ width: width(container), height: HEIGHT, ...opts }, data, container);
  plots.set(container, { plot, key });
  // uPlot draws its axes on the canvas: their labels are named here for readers and tests.
  container.dataset.axes = plot.axes.map((a) => a.label ?? '').join('|');
  return plot;
}

/**
 * One bar per category (a status, a currency, a rating): uPlot's bars path on an x axis of
 * category indexes, labelled with the categories.
 */
export function barChart(
  container,
  { categories, values, label, xLabel, yLabel, color = PALETTE[0], format = plain },
) {
  // Counts (the default format) tick on whole numbers; amounts keep uPlot's own steps.
  const counts = format === plain;
  const x = categories.map((_, i) => i);
  const opts = {
    legend: { live: true },
    cursor: { points: { show: false } },
    scales: {
      x: { time: false, range: () => [-0.5, Math.max(0, categories.length - 0.5)] },
      y: { range: (_u, _min, max) => [0, niceMax(max)] },
    },
    axes: [
      {
        label: xLabel,
        splits: () => x,
        values: (_u, splits) => splits.map((i) => categories[i] ?? ''),
        grid: { show: false },
      },
      {
        label: yLabel,
        values: (_u, splits) => splits.map(format),
        size: 60,
        ...(counts ? { incrs: WHOLE_STEPS } : {}),
      },
    ],
    series: [
      { label: xLabel, value: (_u, i) => (i === null || i === undefined ? '–' : (categories[i] ?? '')) },
      {
        label,
        stroke: color,
        fill: `${color}bb`,
        width: 1,
        paths: uPlot.paths.bars({ size: [0.6, 90] }),
        points: { show: false },
        value: (_u, v) => format(v),
      },
    ],
  };
  return place(container, JSON.stringify([categories, label, xLabel, yLabel]), opts, [x, values]);
}

/** Counts per minute: x is time (epoch ms of each minute), one line per series. */
export function minuteChart(container, { minutes, series, yLabel }) {
  const data = [minutes.map((m) => m / 1000), ...series.map((s) => minutes.map((m) => s.values.get(m) ?? 0))];
  const opts = {
    legend: { live: true },
    scales: { x: { time: true }, y: { range: (_u, _min, max) => [0, niceMax(max)] } },
    axes: [
      { label: 'time (one point per minute)' },
      {
        label: yLabel,
        size: 60,
        values: (_u, splits) => splits.map((v) => (Number.isInteger(v) ? String(v) : '')),
      },
    ],
    series: [
      {},
      ...series.map((s, i) => ({
        label: s.name,
        stroke: s.color ?? PALETTE[i % PALETTE.length],
        width: 2,
        paths: uPlot.paths.stepped({ align: 1 }),
        points: { show: false },
      })),
    ],
  };
  return place(container, JSON.stringify([series.map((s) => s.name), yLabel]), opts, data);
}
