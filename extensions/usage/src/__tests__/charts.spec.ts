import { stackByDay } from '../chart-math';
import { budgetBar, budgetText, horizontalBarChart, stackedBarChart, WIDTH } from '../charts';
import { one, report } from './report-fixture';

/** The drawn height of a rect, as a number. */
const height = (rect: Element): number => Number(rect.getAttribute('height'));

describe('stackedBarChart', () => {
  const chart = stackedBarChart(stackByDay(report(), 'core_hours'), 'core_hours', 'By day');

  it('is one image named by its caption and described by the numbers in words', () => {
    const svg = one(chart, 'svg');
    expect(svg.getAttribute('role')).toBe('img');
    const caption = one(chart, 'figcaption');
    expect(svg.getAttribute('aria-labelledby')).toBe(caption.id);
    expect(caption.textContent).toBe('By day');
    const desc = one(chart, `#${svg.getAttribute('aria-describedby')}`);
    expect(desc.textContent).toBe(
      '2026-12-02: 2.5 core-h (Servers 2, Dask 0.5); 2026-12-04: 1 core-h (Batch runs 1)'
    );
  });

  it('draws one bar per day, stacked, in proportion, on a round axis', () => {
    const bars = chart.querySelectorAll('g.jp-ContinuumUsage-series');
    expect(bars).toHaveLength(5);
    const day2 = chart.querySelectorAll('g[data-key="2026-12-02"] rect');
    expect([...day2].map(r => r.getAttribute('data-kind'))).toEqual(['server', 'dask']);
    // 2 and 0.5 core-hours: four to one, the server's below the Dask's
    expect(height(day2[0]) / height(day2[1])).toBeCloseTo(4, 6);
    expect(Number(day2[1].getAttribute('y')) + height(day2[1])).toBeCloseTo(
      Number(day2[0].getAttribute('y')),
      6
    );
    // the axis tops at 2.5 (the largest day, a round number): ticks 0, 1.25, 2.5; three dates
    const labels = [...chart.querySelectorAll('text')].map(t => t.textContent);
    expect(labels).toEqual(['0', '1.25', '2.5', '12-01', '12-03', '12-05']);
    // each segment has its tooltip
    expect(one(day2[0], 'title').textContent).toBe('2026-12-02 · Servers: 2 core-h');
  });

  it('has a legend of the kinds drawn, hidden from screen readers (the description says it)', () => {
    const legend = one(chart, '.jp-ContinuumUsage-legend');
    expect(legend.getAttribute('aria-hidden')).toBe('true');
    expect([...legend.querySelectorAll('li')].map(li => li.textContent)).toEqual([
      'Servers',
      'Dask',
      'Batch runs'
    ]);
  });

  it('says when there is nothing to draw', () => {
    const empty = stackedBarChart([], 'co2e_kg', 'By day');
    expect(one(empty, 'desc').textContent).toBe('No usage in this period.');
  });
});

describe('horizontalBarChart', () => {
  it('draws the longest bar first, widths in proportion, values written', () => {
    const chart = horizontalBarChart(
      'by-site',
      [
        { label: 'beta', value: 1 },
        { label: 'alpha', value: 4 }
      ],
      'energy_kwh',
      'Energy by site'
    );
    expect(chart.dataset.chart).toBe('by-site');
    const groups = [...chart.querySelectorAll('g')];
    expect(groups.map(g => g.getAttribute('data-key'))).toEqual(['alpha', 'beta']);
    const widths = groups.map(g => Number(one(g, 'rect').getAttribute('width')));
    expect(widths[0] / widths[1]).toBeCloseTo(4, 6);
    expect(widths[0]).toBeLessThan(WIDTH);
    expect(one(chart, 'desc').textContent).toBe('alpha: 4 kWh; beta: 1 kWh');
  });
});

describe('budgetBar', () => {
  const [mine, vo] = report().budgets;

  it('says what is used, what is left, when it resets and whom to ask', () => {
    expect(budgetText(mine, 'en-GB')).toBe(
      'Core-hours (your own, alice): 3.4 of 4 core-h used (85 %), 0.6 left, ' +
        'resets 1 Jan 2027. More: ask support@example.org.'
    );
    expect(budgetText(vo, 'en-GB')).toBe(
      'CO2e (VO vo.hep.example): 1 of 20 kg CO2e used (5 %), 19 left, resets 1 Jan 2027.'
    );
  });

  it('fills the share used, marks 80 %, and warns from there', () => {
    const bar = budgetBar(mine);
    expect(bar.classList.contains('jp-mod-warning')).toBe(true);
    expect(bar.dataset.resource).toBe('core_hours');
    const used = one(bar, '.jp-ContinuumUsage-used');
    expect(Number(used.getAttribute('width'))).toBeCloseTo(WIDTH * 0.85, 2);
    expect(Number(one(bar, 'line').getAttribute('x1'))).toBeCloseTo(WIDTH * 0.8, 6);
    expect(budgetBar(vo).classList.contains('jp-mod-warning')).toBe(false);
    // the caption says it all: no description read a second time
    expect(bar.querySelector('svg')?.getAttribute('aria-describedby')).toBeNull();
    expect(bar.querySelector('figcaption')?.textContent).toBe(budgetText(mine));
  });
});
