import { ListPanel, showRelativeTime, tableWithHead } from '@continuum-hub/common';

import { formatNumber, METRIC_TEXT, stackByDay, valueOf } from './chart-math';
import { budgetBar, horizontalBarChart, stackedBarChart } from './charts';
import { IUsageJob, IUsageReport, METRICS, UsageMetric } from './tokens';
import { UsageModel } from './usage-model';

/** The jobs table's columns: `data-field` and title. */
const COLUMNS: [string, string][] = [
  ['job', 'Job'],
  ['site', 'Site'],
  ['state', 'State'],
  ['started', 'Started'],
  ['core_hours', 'Core-h'],
  ['gpu_hours', 'GPU-h'],
  ['energy_kwh', 'kWh'],
  ['co2e_kg', 'kg CO2e'],
  ['source', 'Numbers']
];

/**
 * Where a job's numbers come from, in words: Slurm's accounting (energy measured by the site,
 * or by our model), the hub's own estimate (the site's accounting did not answer), or not yet.
 */
export function sourceText(job: Pick<IUsageJob, 'source' | 'energy_measured'>): string {
  if (job.source === 'sacct') {
    return job.energy_measured ? 'accounted, energy measured' : 'accounted, energy estimated';
  }
  if (job.source === 'estimated') {
    return 'estimated (accounting delayed)';
  }
  return 'not collected yet';
}

/** A job's name for a person: `server "gpu"`, `Dask cluster abc`, `batch run r-12`. */
function jobName(job: IUsageJob): string {
  const label = job.label || 'default';
  return job.kind === 'server'
    ? `server ${label}`
    : job.kind === 'dask'
      ? `Dask cluster ${label}`
      : `batch run ${label}`;
}

/**
 * The Usage panel: the month's totals, budgets left, charts by day and by site, and the jobs.
 */
export class UsagePanel extends ListPanel {
  /**
   * @param model - the usage model shown
   * @param csv - where the month's jobs download as CSV
   */
  constructor(model: UsageModel, csv: string) {
    super('jp-ContinuumUsage', 'Usage');
    this._model = model;
    const label = document.createElement('label');
    label.textContent = 'Chart ';
    this._metric = document.createElement('select');
    this._metric.className = 'jp-mod-styled';
    this._metric.name = 'metric';
    for (const metric of METRICS) {
      this._metric.append(new Option(METRIC_TEXT[metric].name, metric));
    }
    this._metric.addEventListener('change', () => this.render());
    label.append(this._metric);
    const refresh = document.createElement('button');
    refresh.type = 'button';
    refresh.className = 'jp-mod-styled';
    refresh.dataset.action = 'refresh';
    refresh.textContent = 'Refresh';
    refresh.addEventListener('click', () => void model.refresh());
    const download = document.createElement('a');
    download.href = csv;
    download.download = 'usage.csv';
    download.dataset.action = 'csv';
    download.textContent = 'Jobs as CSV';
    this.bar.append(label, refresh, download);

    this._summary = section('summary');
    this._delayed = section('delayed');
    this._delayed.setAttribute('role', 'status');
    this._budgets = section('budgets');
    this._charts = section('charts');
    const jobsHeading = document.createElement('h3');
    jobsHeading.textContent = 'Jobs';
    this._table = tableWithHead(
      'jp-ContinuumUsage-jobs',
      COLUMNS.map(([, title]) => title)
    );
    this.node.append(
      this._summary,
      this._delayed,
      this._budgets,
      this._charts,
      jobsHeading,
      this._table
    );
    model.changed.connect(this.render, this);
    this.render();
  }

  /** The metric the charts show. */
  get metric(): UsageMetric {
    return this._metric.value as UsageMetric;
  }
  set metric(value: UsageMetric) {
    this._metric.value = value;
    this.render();
  }

  /**
   * The report is first asked for when the panel is first shown (then every
   * `refresh_seconds`): nobody pays for a report nobody looks at.
   */
  protected onAfterShow(): void {
    if (!this._started) {
      this._started = true;
      this._model.start();
    }
  }

  /**
   * Write the model's state into the node.
   */
  render(): void {
    const report = this._model.report;
    this.showState(
      report?.jobs ?? null,
      this._model.error,
      'Asking the hub…',
      'No jobs this month.'
    );
    if (report === null) {
      return;
    }
    this._summary.replaceChildren(...summary(report));
    this._delayed.replaceChildren(
      ...report.delayed.map(delay => {
        const note = document.createElement('p');
        note.className = 'jp-ContinuumUsage-delay';
        note.dataset.site = delay.site;
        note.textContent = `${delay.site}: ${delay.message}`;
        return note;
      })
    );
    const heading = document.createElement('h3');
    heading.textContent = 'Budget left this month';
    const none = document.createElement('p');
    none.textContent = 'No budget limits your usage.';
    this._budgets.replaceChildren(
      heading,
      ...(report.budgets.length ? report.budgets.map(budgetBar) : [none])
    );
    const metric = this.metric;
    const name = METRIC_TEXT[metric].name;
    this._charts.replaceChildren(
      stackedBarChart(stackByDay(report, metric), metric, `${name} by day`),
      horizontalBarChart(
        'by-site',
        report.by_site.map(row => ({ label: row.site, value: valueOf(row, metric) })),
        metric,
        `${name} by site`
      )
    );
    this._table.tBodies[0].replaceChildren(...report.jobs.map(jobRow));
  }

  private _model: UsageModel;
  private _metric: HTMLSelectElement;
  private _summary: HTMLElement;
  private _delayed: HTMLElement;
  private _budgets: HTMLElement;
  private _charts: HTMLElement;
  private _table: HTMLTableElement;
  private _started = false;
}

function section(name: string): HTMLElement {
  const node = document.createElement('section');
  node.className = `jp-ContinuumUsage-${name}`;
  return node;
}

/**
 * The period and its totals: jobs, core-hours, GPU-hours, kWh, CO2e; "estimated" when any
 * job's numbers are the hub's estimate.
 */
function summary(report: IUsageReport): HTMLElement[] {
  const period = document.createElement('p');
  period.className = 'jp-ContinuumUsage-period';
  period.textContent =
    `${report.from.slice(0, 10)} to ${report.to.slice(0, 10)} (UTC)` +
    (report.totals.estimated ? ' · partly estimated' : '');
  const list = document.createElement('dl');
  list.className = 'jp-ContinuumUsage-totals';
  const entries: [string, string, string][] = [
    ['jobs', 'Jobs', String(report.totals.jobs)],
    ...METRICS.map((metric): [string, string, string] => [
      metric,
      METRIC_TEXT[metric].name,
      `${formatNumber(valueOf(report.totals, metric))} ${METRIC_TEXT[metric].unit}`
    ])
  ];
  for (const [key, title, value] of entries) {
    const dt = document.createElement('dt');
    dt.textContent = title;
    const dd = document.createElement('dd');
    dd.dataset.field = key;
    dd.textContent = value;
    list.append(dt, dd);
  }
  return [period, list];
}

function jobRow(job: IUsageJob): HTMLTableRowElement {
  const row = document.createElement('tr');
  row.dataset.job = `${job.site}/${job.job_id}`;
  row.dataset.kind = job.kind;
  const values: Record<string, string> = {
    job: `${jobName(job)} (${job.job_id})`,
    site: job.partition ? `${job.site} › ${job.partition}` : job.site,
    state: job.state,
    started: '',
    core_hours: formatNumber(job.core_hours),
    gpu_hours: formatNumber(job.gpu_hours),
    energy_kwh: formatNumber(job.energy_kwh),
    co2e_kg: formatNumber(job.co2e_kg),
    source: sourceText(job)
  };
  for (const [key, title] of COLUMNS) {
    const cell = row.insertCell();
    cell.dataset.field = key;
    cell.dataset.label = title;
    if (key === 'started') {
      showRelativeTime(cell, job.started_at ?? null);
    } else {
      cell.textContent = values[key];
    }
  }
  row.classList.toggle('jp-mod-estimated', job.source !== 'sacct');
  return row;
}
