/**
 * The Usage panel's charts, drawn as SVG by this small module (no chart library): stacked day
 * bars, horizontal bars by site, budget bars. Each chart is a `figure` whose SVG is one image
 * for assistive technology (`role="img"`) labelled by its title and described by the same
 * numbers in words; every bar also carries a `<title>` tooltip. Colours are JupyterLab's CSS
 * variables (style/base.css), so the charts follow the theme.
 */

import {
  formatAmount,
  formatNumber,
  IStack,
  KIND_TEXT,
  METRIC_TEXT,
  niceMax,
  usedFraction
} from './chart-math';
import { IBudgetStatus, UsageMetric } from './tokens';

const SVG_NS = 'http://www.w3.org/2000/svg';
/** The drawing's size in SVG units; it scales to the panel's width. */
export const WIDTH = 320;
const HEIGHT = 160;
const LEFT = 44;
const BOTTOM = 20;
const TOP = 8;

let nextId = 0;

function svgNode<K extends keyof SVGElementTagNameMap>(
  tag: K,
  attributes: Record<string, string | number> = {},
  text?: string
): SVGElementTagNameMap[K] {
  const node = document.createElementNS(SVG_NS, tag);
  for (const [name, value] of Object.entries(attributes)) {
    node.setAttribute(name, String(value));
  }
  if (text !== undefined) {
    node.textContent = text;
  }
  return node;
}

/**
 * A figure holding an SVG image described in words.
 *
 * @param name - the chart's `data-chart` (for tests)
 * @param title - its visible caption and accessible name
 * @param description - the numbers in words, for screen readers (none when empty)
 * @param height - the drawing's height in SVG units
 * @returns the figure and its SVG (to draw in)
 */
function figure(
  name: string,
  title: string,
  description: string,
  height: number
): { figure: HTMLElement; svg: SVGSVGElement } {
  const id = `jp-ContinuumUsage-chart-${++nextId}`;
  const node = document.createElement('figure');
  node.className = 'jp-ContinuumUsage-chart';
  node.dataset.chart = name;
  const caption = document.createElement('figcaption');
  caption.id = `${id}-title`;
  caption.textContent = title;
  const svg = svgNode('svg', {
    viewBox: `0 0 ${WIDTH} ${height}`,
    role: 'img',
    'aria-labelledby': caption.id,
    preserveAspectRatio: 'xMinYMin meet'
  });
  // no description where the caption says it all (a budget's bar)
  if (description) {
    svg.setAttribute('aria-describedby', `${id}-desc`);
    svg.append(svgNode('desc', { id: `${id}-desc` }, description));
  }
  node.append(caption, svg);
  return { figure: node, svg };
}

/**
 * Bars of days, each stacked by kind, with a y axis from 0 to a round maximum and a legend.
 *
 * @param stacks - the bars ({@link stackByDay})
 * @param metric - what they measure
 * @param title - the chart's caption
 */
export function stackedBarChart(stacks: IStack[], metric: UsageMetric, title: string): HTMLElement {
  const used = stacks.filter(stack => stack.total > 0);
  const description = used.length
    ? used
        .map(
          stack =>
            `${stack.key}: ${formatAmount(stack.total, metric)} (` +
            stack.segments
              .map(s => `${KIND_TEXT[s.kind] ?? s.kind} ${formatNumber(s.value)}`)
              .join(', ') +
            ')'
        )
        .join('; ')
    : `No usage in this period.`;
  const { figure: node, svg } = figure('by-day', title, description, HEIGHT);
  const top = niceMax(Math.max(0, ...stacks.map(stack => stack.total)));
  const plot = { width: WIDTH - LEFT, height: HEIGHT - TOP - BOTTOM };
  const y = (value: number): number => TOP + plot.height * (1 - value / top);
  for (const tick of [0, top / 2, top]) {
    svg.append(
      svgNode('line', {
        class: 'jp-ContinuumUsage-grid',
        x1: LEFT,
        x2: WIDTH,
        y1: y(tick),
        y2: y(tick)
      }),
      svgNode(
        'text',
        { class: 'jp-ContinuumUsage-axis', x: LEFT - 4, y: y(tick) + 3, 'text-anchor': 'end' },
        formatNumber(tick)
      )
    );
  }
  const step = stacks.length ? plot.width / stacks.length : plot.width;
  const barWidth = Math.max(1, step * 0.8);
  stacks.forEach((stack, index) => {
    const x = LEFT + index * step + (step - barWidth) / 2;
    const bar = svgNode('g', { class: 'jp-ContinuumUsage-series', 'data-key': stack.key });
    for (const segment of stack.segments) {
      const rect = svgNode('rect', {
        class: `jp-ContinuumUsage-kind-${segment.kind}`,
        'data-kind': segment.kind,
        x: x.toFixed(2),
        width: barWidth.toFixed(2),
        y: y(segment.y1).toFixed(2),
        height: Math.max(0, y(segment.y0) - y(segment.y1)).toFixed(2)
      });
      rect.append(
        svgNode(
          'title',
          {},
          `${stack.key} · ${KIND_TEXT[segment.kind] ?? segment.kind}: ` +
            formatAmount(segment.value, metric)
        )
      );
      bar.append(rect);
    }
    svg.append(bar);
    // the first, middle and last day under the axis: enough to read the dates
    if (index === 0 || index === stacks.length - 1 || index === Math.floor(stacks.length / 2)) {
      svg.append(
        svgNode(
          'text',
          {
            class: 'jp-ContinuumUsage-axis',
            x: (x + barWidth / 2).toFixed(2),
            y: HEIGHT - 4,
            'text-anchor': 'middle'
          },
          stack.key.slice(5)
        )
      );
    }
  });
  node.append(legend([...new Set(stacks.flatMap(s => s.segments.map(g => g.kind)))]));
  return node;
}

function legend(kinds: string[]): HTMLElement {
  const list = document.createElement('ul');
  list.className = 'jp-ContinuumUsage-legend';
  // a legend only repeats what the description says
  list.setAttribute('aria-hidden', 'true');
  for (const kind of kinds) {
    const item = document.createElement('li');
    const swatch = svgNode('svg', { width: 10, height: 10, viewBox: '0 0 10 10' });
    swatch.append(
      svgNode('rect', { class: `jp-ContinuumUsage-kind-${kind}`, width: 10, height: 10 })
    );
    item.append(swatch, document.createTextNode(KIND_TEXT[kind] ?? kind));
    list.append(item);
  }
  return list;
}

/** One horizontal bar: its label and value. */
export interface IBarRow {
  label: string;
  value: number;
}

/**
 * Horizontal bars, one per row (sites), longest first, each labelled with its value.
 *
 * @param name - the chart's `data-chart`
 * @param rows - the bars
 * @param metric - what they measure
 * @param title - the chart's caption
 */
export function horizontalBarChart(
  name: string,
  rows: IBarRow[],
  metric: UsageMetric,
  title: string
): HTMLElement {
  const sorted = [...rows].sort((a, b) => b.value - a.value);
  const description = sorted.length
    ? sorted.map(row => `${row.label}: ${formatAmount(row.value, metric)}`).join('; ')
    : 'No usage in this period.';
  const rowHeight = 24;
  const height = Math.max(1, sorted.length) * rowHeight + 4;
  const { figure: node, svg } = figure(name, title, description, height);
  const top = niceMax(Math.max(0, ...sorted.map(row => row.value)));
  const labelWidth = 70;
  // room for the value written after the longest bar
  const plot = WIDTH - labelWidth - 110;
  sorted.forEach((row, index) => {
    const y = 2 + index * rowHeight;
    const width = (plot * Math.max(0, row.value)) / top;
    const group = svgNode('g', { class: 'jp-ContinuumUsage-series', 'data-key': row.label });
    const rect = svgNode('rect', {
      class: 'jp-ContinuumUsage-value',
      x: labelWidth,
      y: y + 4,
      height: rowHeight - 8,
      width: width.toFixed(2)
    });
    rect.append(svgNode('title', {}, `${row.label}: ${formatAmount(row.value, metric)}`));
    group.append(
      svgNode('text', { class: 'jp-ContinuumUsage-label', x: 0, y: y + 16 }, row.label),
      rect,
      svgNode(
        'text',
        { class: 'jp-ContinuumUsage-axis', x: labelWidth + width + 4, y: y + 16 },
        formatAmount(row.value, metric)
      )
    );
    svg.append(group);
  });
  return node;
}

/** A budget's resource in words. */
const RESOURCE_TEXT: Record<string, UsageMetric> = {
  core_hours: 'core_hours',
  gpu_hours: 'gpu_hours',
  co2e_kg: 'co2e_kg'
};

/**
 * What a budget says in words: `Core-hours (VO vo.hep.example): 800 of 1000 core-h used,
 * 200 left, resets 1 Jan 2027. Ask hep-support@example.org.`
 */
export function budgetText(status: IBudgetStatus, locale?: string): string {
  const metric = RESOURCE_TEXT[status.resource] ?? 'core_hours';
  const who = status.scope === 'vo' ? `VO ${status.name}` : `your own, ${status.name}`;
  const resets = Date.parse(status.resets);
  const when = Number.isFinite(resets)
    ? new Intl.DateTimeFormat(locale, { dateStyle: 'medium', timeZone: 'UTC' }).format(resets)
    : 'next month';
  const percent = Math.round(usedFraction(status.used, status.limit) * 100);
  return (
    `${METRIC_TEXT[metric].name} (${who}): ${formatNumber(status.used)} of ` +
    `${formatAmount(status.limit, metric)} used (${percent} %), ` +
    `${formatNumber(Math.max(0, status.left))} left, resets ${when}.` +
    (status.contact ? ` More: ask ${status.contact}.` : '')
  );
}

/**
 * A budget bar: the share used, marked at 80 % (the warning), in the warning colour from there.
 *
 * @param status - the budget's state
 */
export function budgetBar(status: IBudgetStatus): HTMLElement {
  const text = budgetText(status);
  const height = 14;
  const { figure: node, svg } = figure('budget', text, '', height);
  node.classList.add('jp-ContinuumUsage-budget');
  node.dataset.resource = status.resource;
  node.dataset.scope = status.scope;
  node.classList.toggle('jp-mod-warning', status.warning);
  const fraction = usedFraction(status.used, status.limit);
  svg.append(
    svgNode('rect', { class: 'jp-ContinuumUsage-track', x: 0, y: 2, width: WIDTH, height: 10 }),
    svgNode('rect', {
      class: 'jp-ContinuumUsage-used',
      x: 0,
      y: 2,
      width: (WIDTH * fraction).toFixed(2),
      height: 10
    }),
    svgNode('line', {
      class: 'jp-ContinuumUsage-mark',
      x1: WIDTH * 0.8,
      x2: WIDTH * 0.8,
      y1: 0,
      y2: height
    })
  );
  return node;
}
