/**
 * The usage report, as `GET {baseUrl}continuum/usage` passes on the hub's
 * `GET /hub/api/continuum/usage` (contract of issue 12, §5). Its budgets are the estimate's
 * (`IBudgetStatus` of `@continuum-hub/common`).
 */

import { IBudgetStatus } from '@continuum-hub/common';

export type { IBudgetStatus };

/** What started a job: a JupyterLab server, a Dask cluster's job, a batch run's job. */
export type UsageKind = 'server' | 'dask' | 'batch';

/** The kinds in the order the charts stack them. */
export const KINDS: readonly UsageKind[] = ['server', 'dask', 'batch'];

/** The numbers a chart can show. */
export type UsageMetric = 'core_hours' | 'gpu_hours' | 'energy_kwh' | 'co2e_kg';

/** The metrics in the order the panel offers them. */
export const METRICS: readonly UsageMetric[] = ['core_hours', 'gpu_hours', 'energy_kwh', 'co2e_kg'];

/** Usage summed over some jobs. */
export interface IUsageNumbers {
  jobs: number;
  core_hours: number;
  gpu_hours: number;
  energy_kwh: number;
  co2e_kg: number;
}

/** The totals of the period; `estimated` when any job's numbers are the hub's estimate. */
export interface IUsageTotals extends IUsageNumbers {
  estimated: boolean;
}

/** One day of the period (`day`: `YYYY-MM-DD`, UTC). */
export interface IUsageDay extends IUsageNumbers {
  day: string;
}

/** One site, kind or VO of the period. */
export interface IUsageSite extends IUsageNumbers {
  site: string;
}
export interface IUsageByKind extends IUsageNumbers {
  kind: string;
}
export interface IUsageVo extends IUsageNumbers {
  vo: string | null;
}

/** One job of the ledger (`UsageJob.as_json()`; times ISO 8601 UTC). */
export interface IUsageJob {
  site: string;
  job_id: string;
  kind: string;
  label: string;
  user: string;
  vo: string | null;
  partition: string;
  submitted_at: string;
  started_at: string | null;
  ended_at: string | null;
  state: string;
  elapsed_s: number;
  alloc_cores: number;
  alloc_gpus: number;
  core_hours: number;
  gpu_hours: number;
  energy_kwh: number;
  co2e_kg: number;
  energy_measured: boolean;
  /** `pending` (not collected yet), `sacct` or `estimated`. */
  source: string;
  final: boolean;
}

/** A site whose accounting did not answer: its numbers are late (or estimated). */
export interface IUsageDelay {
  site: string;
  since: string | null;
  message: string;
}

/** The whole report. */
export interface IUsageReport {
  user: string;
  from: string;
  to: string;
  totals: IUsageTotals;
  by_day: IUsageDay[];
  by_site: IUsageSite[];
  by_kind: IUsageByKind[];
  by_vo: IUsageVo[];
  jobs: IUsageJob[];
  budgets: IBudgetStatus[];
  delayed: IUsageDelay[];
  /** Seconds between two refreshes (the server extension's setting). */
  refresh_seconds?: number;
}
