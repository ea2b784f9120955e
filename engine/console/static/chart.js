/**
 * The dashboard's chart: messages received and errored per hour as grouped bars in an inline SVG,
 * with a value axis, hour labels (local time), a legend, and a tooltip per hour.
 */

import { svg } from './dom.js';
import { localText, parseTime } from './format.js';
import { t } from './i18n.js';

const WIDTH = 760;
const HEIGHT = 250;
const MARGIN = { left: 48, right: 12, top: 34, bottom: 40 };
const SERIES = [
  { key: 'received', label: 'chart.received', css: 'bar-received' },
  { key: 'errored', label: 'chart.errored', css: 'bar-errored' },
];

function niceStep(max, ticks) {
  const rough = Math.max(max, 1) / ticks;
  const magnitude = 10 ** Math.floor(Math.log10(rough));
  const step = [1, 2, 5, 10].map((m) => m * magnitude).find((s) => s >= rough);
  return Math.max(1, step);
}

/** Adds up every channel's series: {received: [...], errored: [...]} of `buckets` numbers. */
export function totals(series) {
  const n = series.buckets || 0;
  const out = { received: new Array(n).fill(0), errored: new Array(n).fill(0) };
  for (const channel of Object.values(series.channels || {})) {
    for (const { key } of SERIES) {
      (channel[key] || []).forEach((value, i) => {
        if (i < n) out[key][i] += Number(value) || 0;
      });
    }
  }
  return out;
}

/**
 * The chart as an <svg id="chart">. `series` is the dashboard's {start, buckets, channels};
 * `bucketSeconds` the width of a bar group (3600).
 */
export function hourlyChart(series, bucketSeconds) {
  const n = series.buckets || 0;
  const sums = totals(series);
  const start = parseTime(series.start) || new Date();
  const max = Math.max(0, ...sums.received, ...sums.errored);
  const step = niceStep(max, 4);
  const top = max === 0 ? 4 * step : step * Math.ceil(max / step);
  const plotW = WIDTH - MARGIN.left - MARGIN.right;
  const plotH = HEIGHT - MARGIN.top - MARGIN.bottom;
  const y = (v) => MARGIN.top + plotH - (v / top) * plotH;
  const slot = n ? plotW / n : plotW;
  const barW = Math.max(1, (slot * 0.8) / SERIES.length);

  const root = svg('svg', {
    id: 'chart',
    class: 'chart',
    viewBox: `0 0 ${WIDTH} ${HEIGHT}`,
    role: 'img',
    'aria-label': t('chart.title'),
  });
  root.append(svg('title', {}, t('chart.title')));

  // value axis: grid lines and their numbers
  for (let v = 0; v <= top; v += step) {
    root.append(
      svg('line', { class: 'grid', x1: MARGIN.left, x2: WIDTH - MARGIN.right, y1: y(v), y2: y(v) }),
      svg('text', { class: 'tick', x: MARGIN.left - 6, y: y(v) + 4, 'text-anchor': 'end' }, String(v)),
    );
  }
  root.append(svg('text', { class: 'axis-title', x: MARGIN.left - 40, y: MARGIN.top - 14 }, t('chart.axis')));

  // bars, a tooltip area per hour, hour labels
  const labelEvery = Math.max(1, Math.ceil(n / 12));
  for (let i = 0; i < n; i += 1) {
    const x0 = MARGIN.left + i * slot + slot * 0.1;
    const from = new Date(start.getTime() + i * bucketSeconds * 1000);
    const to = new Date(from.getTime() + bucketSeconds * 1000);
    SERIES.forEach(({ key, css }, k) => {
      const value = sums[key][i];
      if (value > 0) {
        root.append(svg('rect', {
          class: css, x: x0 + k * barW, y: y(value), width: barW - 1, height: y(0) - y(value),
        }));
      }
    });
    const tip = t('chart.tooltip', {
      from: localText(from, { seconds: false }),
      to: localText(to, { seconds: false }).slice(11),
      received: sums.received[i],
      errored: sums.errored[i],
    });
    root.append(svg('rect', { class: 'hover', x: MARGIN.left + i * slot, y: MARGIN.top, width: slot, height: plotH },
      svg('title', {}, tip)));
    if (i % labelEvery === 0) {
      const hour = localText(from, { seconds: false });
      const label = svg('text', { class: 'tick', x: MARGIN.left + (i + 0.5) * slot, y: HEIGHT - MARGIN.bottom + 16, 'text-anchor': 'middle' }, hour.slice(11));
      root.append(label);
      if (i === 0 || from.getHours() < labelEvery) {
        root.append(svg('text', { class: 'tick date', x: MARGIN.left + (i + 0.5) * slot, y: HEIGHT - MARGIN.bottom + 30, 'text-anchor': 'middle' }, hour.slice(5, 10)));
      }
    }
  }
  root.append(svg('line', { class: 'axis', x1: MARGIN.left, x2: WIDTH - MARGIN.right, y1: y(0), y2: y(0) }));

  // legend, top right
  let x = WIDTH - MARGIN.right;
  for (const { label, css } of [...SERIES].reverse()) {
    const text = t(label);
    const width = 18 + [...text].reduce((w, c) => w + (c.charCodeAt(0) > 0x2e80 ? 13 : 7.5), 0);
    x -= width + 14;
    root.append(
      svg('rect', { class: css, x, y: 8, width: 12, height: 12, rx: 2 }),
      svg('text', { class: 'legend', x: x + 18, y: 18 }, text),
    );
  }
  return root;
}
