import { IUsageJob, IUsageReport } from '../tokens';

/**
 * A job of the ledger as `UsageJob.as_json()` writes it (contract §1), with overrides.
 */
export function job(overrides: Partial<IUsageJob> = {}): IUsageJob {
  return {
    site: 'alpha',
    job_id: '101',
    kind: 'server',
    label: '',
    user: 'alice',
    vo: 'vo.hep.example',
    partition: 'interactive',
    submitted_at: '2026-12-02T09:00:00+00:00',
    started_at: '2026-12-02T09:00:05+00:00',
    ended_at: '2026-12-02T10:00:05+00:00',
    state: 'COMPLETED',
    elapsed_s: 3600,
    alloc_cores: 2,
    alloc_gpus: 0,
    core_hours: 2,
    gpu_hours: 0,
    energy_kwh: 0.03,
    co2e_kg: 0.002,
    energy_measured: false,
    source: 'sacct',
    final: true,
    ...overrides
  };
}

/**
 * A report of the shape of `GET /hub/api/continuum/usage` (contract §5): alice, early December,
 * a server and a Dask job on the 2nd (alpha), a batch job on the 4th (beta, estimated: beta's
 * sacct is down), a core-hour budget at 85 %.
 */
export function report(): IUsageReport {
  const jobs = [
    job({
      site: 'beta',
      job_id: '7',
      kind: 'batch',
      label: 'r-1',
      partition: 'batch',
      submitted_at: '2026-12-04T08:00:00+00:00',
      started_at: '2026-12-04T08:00:00+00:00',
      core_hours: 1,
      energy_kwh: 0.01,
      co2e_kg: 0.001,
      source: 'estimated'
    }),
    job({ job_id: '102', kind: 'dask', label: 'c-1', core_hours: 0.5, energy_kwh: 0.005 }),
    job()
  ];
  const day = (d: string, core: number, kwh: number, co2: number, n: number) => ({
    day: d,
    core_hours: core,
    gpu_hours: 0,
    energy_kwh: kwh,
    co2e_kg: co2,
    jobs: n
  });
  return {
    user: 'alice',
    from: '2026-12-01T00:00:00+00:00',
    to: '2026-12-05T10:00:00+00:00',
    totals: {
      jobs: 3,
      core_hours: 3.5,
      gpu_hours: 0,
      energy_kwh: 0.045,
      co2e_kg: 0.005,
      estimated: true
    },
    by_day: [day('2026-12-02', 2.5, 0.035, 0.004, 2), day('2026-12-04', 1, 0.01, 0.001, 1)],
    by_site: [
      { site: 'alpha', core_hours: 2.5, gpu_hours: 0, energy_kwh: 0.035, co2e_kg: 0.004, jobs: 2 },
      { site: 'beta', core_hours: 1, gpu_hours: 0, energy_kwh: 0.01, co2e_kg: 0.001, jobs: 1 }
    ],
    by_kind: [],
    by_vo: [],
    jobs,
    budgets: [
      {
        scope: 'user',
        name: 'alice',
        resource: 'core_hours',
        unit: 'core-hours',
        limit: 4,
        used: 3.4,
        left: 0.6,
        resets: '2027-01-01T00:00:00+00:00',
        contact: 'support@example.org',
        warning: true
      },
      {
        scope: 'vo',
        name: 'vo.hep.example',
        resource: 'co2e_kg',
        unit: 'kg CO2e',
        limit: 20,
        used: 1,
        left: 19,
        resets: '2027-01-01T00:00:00+00:00',
        contact: '',
        warning: false
      }
    ],
    delayed: [
      {
        site: 'beta',
        since: '2026-12-04T07:00:00+00:00',
        message: 'usage delayed: sacct did not answer (slurmdbd down)'
      }
    ]
  };
}

/**
 * The first element under `root` that matches `selector`; the test fails when there is none.
 */
export function one(root: ParentNode, selector: string): Element {
  const node = root.querySelector(selector);
  if (node === null) {
    throw new Error(`nothing matches ${selector}`);
  }
  return node;
}
