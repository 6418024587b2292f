import { Widget } from '@lumino/widgets';

import { IUsageReport } from '../tokens';
import { UsageModel } from '../usage-model';
import { sourceText, UsagePanel } from '../usage-panel';
import { job, one, report } from './report-fixture';

/** A model answering `answer` (or failing with its message); counts the requests. */
function model(answer: IUsageReport | string): { model: UsageModel; asked: () => number } {
  let count = 0;
  const usage = new UsageModel(async () => {
    count += 1;
    if (typeof answer === 'string') {
      throw new Error(answer);
    }
    return answer;
  });
  return { model: usage, asked: () => count };
}

function text(panel: UsagePanel, selector: string): string[] {
  return [...panel.node.querySelectorAll(selector)].map(node => node.textContent ?? '');
}

describe('UsagePanel', () => {
  it('shows the totals, the delays, the budgets, the charts and the jobs', async () => {
    const { model: usage } = model(report());
    const panel = new UsagePanel(usage, '/user/alice/continuum/usage?format=csv');
    await usage.refresh();
    usage.dispose();

    expect(text(panel, '.jp-ContinuumUsage-period')).toEqual([
      '2026-12-01 to 2026-12-05 (UTC) · partly estimated'
    ]);
    expect(text(panel, '.jp-ContinuumUsage-totals dd')).toEqual([
      '3',
      '3.5 core-h',
      '0 GPU-h',
      '0.045 kWh',
      '0.005 kg CO2e'
    ]);
    expect(text(panel, '.jp-ContinuumUsage-delay')).toEqual([
      'beta: usage delayed: sacct did not answer (slurmdbd down)'
    ]);
    const budgets = panel.node.querySelectorAll('figure[data-chart="budget"]');
    expect(budgets).toHaveLength(2);
    expect(budgets[0].classList.contains('jp-mod-warning')).toBe(true);
    expect([...panel.node.querySelectorAll('figure')].map(f => f.dataset.chart)).toEqual([
      'budget',
      'budget',
      'by-day',
      'by-site'
    ]);
    expect(text(panel, 'figure[data-chart="by-day"] figcaption')).toEqual(['Core-hours by day']);
    const rows = [...panel.node.querySelectorAll<HTMLTableRowElement>('tbody tr')];
    expect(rows.map(row => row.dataset.job)).toEqual(['beta/7', 'alpha/102', 'alpha/101']);
    const cell = (row: number, field: string) =>
      one(rows[row], `td[data-field="${field}"]`).textContent;
    expect(cell(0, 'job')).toBe('batch run r-1 (7)');
    expect(cell(0, 'source')).toBe('estimated (accounting delayed)');
    expect(cell(2, 'job')).toBe('server default (101)');
    expect(cell(2, 'site')).toBe('alpha › interactive');
    expect(cell(2, 'core_hours')).toBe('2');
    expect(rows[0].classList.contains('jp-mod-estimated')).toBe(true);
    expect(rows[2].classList.contains('jp-mod-estimated')).toBe(false);
    const csv = one(panel.node, 'a[data-action="csv"]') as HTMLAnchorElement;
    expect(csv.getAttribute('href')).toBe('/user/alice/continuum/usage?format=csv');
    expect(one(panel.node, '.jp-ContinuumUsage-empty').textContent).toBe('');
  });

  it('redraws the charts for the metric chosen', async () => {
    const { model: usage } = model(report());
    const panel = new UsagePanel(usage, 'csv');
    await usage.refresh();
    usage.dispose();
    panel.metric = 'co2e_kg';
    expect(text(panel, 'figure[data-chart] figcaption').slice(2)).toEqual([
      'CO2e by day',
      'CO2e by site'
    ]);
    expect(text(panel, 'figure[data-chart="by-site"] desc')).toEqual([
      'alpha: 0.004 kg CO2e; beta: 0.001 kg CO2e'
    ]);
  });

  it('says when there is nothing, and shows the error when the hub cannot be asked', async () => {
    const empty = { ...report(), jobs: [], budgets: [], delayed: [], by_day: [], by_site: [] };
    const { model: quiet } = model(empty);
    const panel = new UsagePanel(quiet, 'csv');
    expect(text(panel, '.jp-ContinuumUsage-empty')).toEqual(['Asking the hub…']);
    await quiet.refresh();
    quiet.dispose();
    expect(text(panel, '.jp-ContinuumUsage-empty')).toEqual(['No jobs this month.']);
    expect(text(panel, '.jp-ContinuumUsage-budgets p')).toEqual(['No budget limits your usage.']);

    const { model: broken } = model('The hub cannot be reached');
    const failing = new UsagePanel(broken, 'csv');
    await broken.refresh();
    broken.dispose();
    expect(text(failing, '.jp-ContinuumUsage-error')).toEqual(['The hub cannot be reached']);
    expect(failing.node.querySelectorAll('figure')).toHaveLength(0);
  });

  it('asks the hub only once the panel is first shown', () => {
    const { model: usage, asked } = model(report());
    const panel = new UsagePanel(usage, 'csv');
    panel.hide();
    Widget.attach(panel, document.body);
    expect(asked()).toBe(0);
    panel.show();
    expect(asked()).toBe(1);
    panel.hide();
    panel.show();
    expect(asked()).toBe(1);
    usage.dispose();
    Widget.detach(panel);
  });
});

describe('sourceText', () => {
  it.each([
    ['sacct', true, 'accounted, energy measured'],
    ['sacct', false, 'accounted, energy estimated'],
    ['estimated', false, 'estimated (accounting delayed)'],
    ['pending', false, 'not collected yet']
  ])('%s, measured %s → %s', (source, measured, words) => {
    expect(sourceText(job({ source, energy_measured: measured }))).toBe(words);
  });
});
