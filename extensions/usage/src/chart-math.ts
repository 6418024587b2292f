/**
 * The maths behind the Usage panel's charts, free of the DOM: axis bounds, the days of the
 * period, the day bars stacked by kind, the numbers as people read them.
 */

import { IUsageJob, IUsageNumbers, IUsageReport, KINDS, UsageMetric } from './tokens';

/** A metric's name and unit, as the panel writes them. */
export const METRIC_TEXT: Record<UsageMetric, { name: string; unit: string }> = {
  core_hours: { name: 'Core-hours', unit: 'core-h' },
  gpu_hours: { name: 'GPU-hours', unit: 'GPU-h' },
  energy_kwh: { name: 'Energy', unit: 'kWh' },
  co2e_kg: { name: 'CO2e', unit: 'kg CO2e' }
};

/** The kinds' names; `other`: usage of jobs beyond the report's list (it holds at most 500). */
export const KIND_TEXT: Record<string, string> = {
  server: 'Servers',
  dask: 'Dask',
  batch: 'Batch runs',
  other: 'Other'
};

/** Longest period the charts draw, in days (the hub's API refuses more than 366). */
export const MAX_DAYS = 366;

/** One segment of a stacked bar: `y0`..`y1` in the metric's unit. */
export interface ISegment {
  kind: string;
  value: number;
  y0: number;
  y1: number;
}

/** One stacked bar: a day, its total and its segments bottom up. */
export interface IStack {
  key: string;
  total: number;
  segments: ISegment[];
}

/**
 * The smallest "round" number (1, 2, 2.5 or 5 times a power of ten) at least `value`: the top
 * of a chart's axis. 1 for nothing to show.
 *
 * @param value - the largest value drawn
 */
export function niceMax(value: number): number {
  if (!Number.isFinite(value) || value <= 0) {
    return 1;
  }
  const power = Math.pow(10, Math.floor(Math.log10(value)));
  for (const step of [1, 2, 2.5, 5, 10]) {
    // a relative tolerance: 0.30000000000000004 is 0.3 for an axis
    if (step * power >= value * (1 - 1e-9)) {
      return step * power;
    }
  }
  return 10 * power;
}

/**
 * A number for a person: whole above 100, at most two decimals above 1, two significant digits
 * below (no trailing zeros).
 *
 * @param value - the number
 * @returns its text (`–` when not finite)
 */
export function formatNumber(value: number): string {
  if (!Number.isFinite(value)) {
    return '–';
  }
  const size = Math.abs(value);
  if (size === 0) {
    return '0';
  }
  if (size >= 100) {
    return value.toFixed(0);
  }
  if (size >= 1) {
    return String(Number(value.toFixed(2)));
  }
  return String(Number(value.toPrecision(2)));
}

/**
 * A metric's value with its unit: `1.25 core-h`, `0.031 kWh`.
 */
export function formatAmount(value: number, metric: UsageMetric): string {
  return `${formatNumber(value)} ${METRIC_TEXT[metric].unit}`;
}

/**
 * Every day (`YYYY-MM-DD`, UTC) from the day of `from` to the day of `to`, both included,
 * at most {@link MAX_DAYS}; none when either is not a time or `to` comes first.
 */
export function daysOf(from: string, to: string): string[] {
  const start = Date.parse(from);
  const end = Date.parse(to);
  if (!Number.isFinite(start) || !Number.isFinite(end) || end < start) {
    return [];
  }
  const days: string[] = [];
  const day = new Date(start);
  day.setUTCHours(0, 0, 0, 0);
  while (day.getTime() <= end && days.length < MAX_DAYS) {
    days.push(day.toISOString().slice(0, 10));
    day.setUTCDate(day.getUTCDate() + 1);
  }
  return days;
}

/**
 * The day (UTC) a job counts on: the day it was submitted, as the hub's `by_day` counts it.
 */
export function jobDay(job: IUsageJob): string {
  const at = Date.parse(job.submitted_at);
  return Number.isFinite(at) ? new Date(at).toISOString().slice(0, 10) : '';
}

/**
 * The day bars, stacked by kind (servers, Dask, batch runs).
 *
 * The day's total is the report's (`by_day`, every job); its split by kind comes from the
 * report's jobs, a list of at most 500: what those do not explain is stacked as `other`.
 *
 * @param report - the usage report
 * @param metric - what the bars measure
 * @returns one stack per day of the period, empty days included
 */
export function stackByDay(report: IUsageReport, metric: UsageMetric): IStack[] {
  const totals = new Map(report.by_day.map(row => [row.day, row[metric]]));
  const byKind = new Map<string, Map<string, number>>();
  for (const job of report.jobs) {
    const day = jobDay(job);
    const kinds = byKind.get(day) ?? new Map<string, number>();
    kinds.set(job.kind, (kinds.get(job.kind) ?? 0) + (job[metric] ?? 0));
    byKind.set(day, kinds);
  }
  const days = daysOf(report.from, report.to);
  // a day the report counts outside its own period (clock skew) is still shown
  for (const day of totals.keys()) {
    if (!days.includes(day)) {
      days.push(day);
    }
  }
  days.sort();
  return days.map(day => {
    const kinds = byKind.get(day) ?? new Map<string, number>();
    const known = [...kinds.values()].reduce((sum, value) => sum + value, 0);
    const total = totals.get(day) ?? known;
    const values: [string, number][] = KINDS.map(kind => [kind, kinds.get(kind) ?? 0]);
    const rest = total - known;
    // rounding in the hub's sums is not "other" usage
    if (rest > Math.max(1e-9, total * 1e-6)) {
      values.push(['other', rest]);
    }
    let y = 0;
    const segments = values
      .filter(([, value]) => value > 0)
      .map(([kind, value]) => {
        const segment = { kind, value, y0: y, y1: y + value };
        y += value;
        return segment;
      });
    return { key: day, total: Math.max(total, y), segments };
  });
}

/**
 * The share of a budget used, between 0 and 1 (a limit of 0 counts as all used).
 */
export function usedFraction(used: number, limit: number): number {
  if (!(limit > 0)) {
    return 1;
  }
  return Math.min(1, Math.max(0, used / limit));
}

/**
 * A row's value of `metric`, 0 when the hub left it out.
 */
export function valueOf(row: Partial<IUsageNumbers>, metric: UsageMetric): number {
  const value = row[metric];
  return typeof value === 'number' && Number.isFinite(value) ? value : 0;
}
