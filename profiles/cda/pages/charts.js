/**
 * The uploads page's two charts, inline SVG in the style of the console's chart.js (grid, ticks,
 * legend, a tooltip per bar): documents accepted and rejected per institution as stacked horizontal
 * bars (#uploads-chart), and per day of the month as stacked columns (#uploads-trend).
 */

import { svg } from '../../dom.js';
import { t } from '../../i18n.js';

const WIDTH = 760;
const SERIES = [
  { key: 'accepted', label: 'uploads.accepted', css: 'bar-accepted' },
  { key: 'rejected', label: 'uploads.rejected', css: 'bar-rejected' },
];

function niceStep(max, ticks) {
  const rough = Math.max(max, 1) / ticks;
  const magnitude = 10 ** Math.floor(Math.log10(rough));
  const step = [1, 2, 5, 10].map((m) => m * magnitude).find((s) => s >= rough);
  return Math.max(1, step);
}

/** The axis' step and top value for values up to `max`. */
function scale(max, ticks) {
  const step = niceStep(max, ticks);
  return { step, top: max === 0 ? ticks * step : step * Math.ceil(max / step) };
}

function textWidth(text) {
  return [...text].reduce((w, c) => w + (c.charCodeAt(0) > 0x2e80 ? 13 : 7.5), 0);
}

function legend(root, right) {
  let x = right;
  for (const { label, css } of [...SERIES].reverse()) {
    const text = t(label);
    x -= 18 + textWidth(text) + 14;
    root.append(
      svg('rect', { class: css, x, y: 8, width: 12, height: 12, rx: 2 }),
      svg('text', { class: 'legend', x: x + 18, y: 18 }, text),
    );
  }
}

function shorten(text, room) {
  let out = '';
  for (const c of text) {
    if (textWidth(`${out}${c}…`) > room) return `${out}…`;
    out += c;
  }
  return out;
}

/**
 * Accepted and rejected documents per institution, one stacked bar each (<svg id="uploads-chart">);
 * `rows` are the statistics' institutions.
 */
export function institutionChart(rows) {
  const shown = rows.filter((r) => r.received > 0 || r.accepted > 0 || r.rejected > 0);
  const list = shown.length ? shown : rows;
  const margin = { left: 190, right: 16, top: 34, bottom: 28 };
  const barH = 22;
  const gap = 10;
  const height = margin.top + margin.bottom + Math.max(1, list.length) * (barH + gap);
  const max = Math.max(0, ...list.map((r) => r.accepted + r.rejected));
  const { step, top } = scale(max, 5);
  const plotW = WIDTH - margin.left - margin.right;
  const x = (v) => margin.left + (v / top) * plotW;
  const bottom = height - margin.bottom;

  const root = svg('svg', {
    id: 'uploads-chart', class: 'chart uploads-chart', viewBox: `0 0 ${WIDTH} ${height}`,
    role: 'img', 'aria-label': t('uploads.chart.title'),
  });
  root.append(svg('title', {}, t('uploads.chart.title')));
  for (let v = 0; v <= top; v += step) {
    root.append(
      svg('line', { class: 'grid', x1: x(v), x2: x(v), y1: margin.top - 4, y2: bottom }),
      svg('text', { class: 'tick', x: x(v), y: bottom + 16, 'text-anchor': 'middle' }, String(v)),
    );
  }
  root.append(svg('text', { class: 'axis-title', x: 8, y: 18 }, t('uploads.chart.axis')));
  list.forEach((r, i) => {
    const y0 = margin.top + i * (barH + gap);
    const name = r.name || r.institution || t('uploads.noInstitution');
    const group = svg('g', { class: 'bar-group', 'data-institution': r.institution });
    group.append(svg('text', { class: 'tick label', x: margin.left - 8, y: y0 + barH / 2 + 4, 'text-anchor': 'end' },
      shorten(name, margin.left - 16)));
    let at = 0;
    for (const { key, css } of SERIES) {
      const value = r[key] || 0;
      if (value > 0) {
        group.append(svg('rect', { class: css, x: x(at), y: y0, width: Math.max(1, x(at + value) - x(at)), height: barH }));
      }
      at += value;
    }
    if (at > 0) {
      group.append(svg('text', { class: 'tick value', x: x(at) + 5, y: y0 + barH / 2 + 4 }, String(at)));
    }
    group.append(svg('rect', { class: 'hover', x: 0, y: y0 - gap / 2, width: WIDTH, height: barH + gap },
      svg('title', {}, t('uploads.chart.tooltip', {
        name, code: r.institution, received: r.received, accepted: r.accepted, rejected: r.rejected,
      }))));
    root.append(group);
  });
  root.append(svg('line', { class: 'axis', x1: margin.left, x2: margin.left, y1: margin.top - 4, y2: bottom }));
  legend(root, WIDTH - margin.right);
  return root;
}

/** Documents accepted and rejected per day of the month, stacked (<svg id="uploads-trend">). */
export function trendChart(days) {
  const height = 230;
  const margin = { left: 48, right: 12, top: 34, bottom: 36 };
  const n = days.length;
  const max = Math.max(0, ...days.map((d) => d.accepted + d.rejected));
  const { step, top } = scale(max, 4);
  const plotW = WIDTH - margin.left - margin.right;
  const plotH = height - margin.top - margin.bottom;
  const y = (v) => margin.top + plotH - (v / top) * plotH;
  const slot = n ? plotW / n : plotW;
  const barW = Math.max(1, slot * 0.7);

  const root = svg('svg', {
    id: 'uploads-trend', class: 'chart uploads-trend', viewBox: `0 0 ${WIDTH} ${height}`,
    role: 'img', 'aria-label': t('uploads.trend.title'),
  });
  root.append(svg('title', {}, t('uploads.trend.title')));
  for (let v = 0; v <= top; v += step) {
    root.append(
      svg('line', { class: 'grid', x1: margin.left, x2: WIDTH - margin.right, y1: y(v), y2: y(v) }),
      svg('text', { class: 'tick', x: margin.left - 6, y: y(v) + 4, 'text-anchor': 'end' }, String(v)),
    );
  }
  root.append(svg('text', { class: 'axis-title', x: margin.left - 40, y: margin.top - 14 }, t('uploads.chart.axis')));
  days.forEach((d, i) => {
    const x0 = margin.left + i * slot + (slot - barW) / 2;
    const group = svg('g', { class: 'bar-group', 'data-day': d.day });
    let at = 0;
    for (const { key, css } of SERIES) {
      const value = d[key] || 0;
      if (value > 0) group.append(svg('rect', { class: css, x: x0, y: y(at + value), width: barW, height: y(at) - y(at + value) }));
      at += value;
    }
    group.append(svg('rect', { class: 'hover', x: margin.left + i * slot, y: margin.top, width: slot, height: plotH },
      svg('title', {}, t('uploads.trend.tooltip', { day: d.day, received: d.received, accepted: d.accepted, rejected: d.rejected }))));
    root.append(group);
    const dayOfMonth = Number(d.day.slice(8));
    if (dayOfMonth === 1 || dayOfMonth % 5 === 0) {
      root.append(svg('text', { class: 'tick', x: margin.left + (i + 0.5) * slot, y: height - margin.bottom + 16, 'text-anchor': 'middle' },
        d.day.slice(5)));
    }
  });
  root.append(svg('line', { class: 'axis', x1: margin.left, x2: WIDTH - margin.right, y1: y(0), y2: y(0) }));
  legend(root, WIDTH - margin.right);
  return root;
}
