import {
  daysOf,
  formatAmount,
  formatNumber,
  jobDay,
  niceMax,
  stackByDay,
  usedFraction
} from '../chart-math';
import { job, report } from './report-fixture';

describe('niceMax', () => {
  it.each([
    [0, 1],
    [-3, 1],
    [NaN, 1],
    [0.3, 0.5],
    [1, 1],
    [1.2, 2],
    [2.1, 2.5],
    [3, 5],
    [7, 10],
    [0.1 + 0.2, 0.5],
    [0.2, 0.2],
    [12345, 20000]
  ])('%s → %s', (value, top) => {
    expect(niceMax(value)).toBeCloseTo(top, 12);
  });
});

describe('formatNumber and formatAmount', () => {
  it.each([
    [0, '0'],
    [0.000123, '0.00012'],
    [0.5, '0.5'],
    [1.234, '1.23'],
    [20, '20'],
    [123.4, '123'],
    [Infinity, '–']
  ])('%s → %s', (value, text) => {
    expect(formatNumber(value)).toBe(text);
  });

  it('adds the unit', () => {
    expect(formatAmount(2, 'core_hours')).toBe('2 core-h');
    expect(formatAmount(1.5, 'gpu_hours')).toBe('1.5 GPU-h');
    expect(formatAmount(0.031, 'energy_kwh')).toBe('0.031 kWh');
  });
});

describe('daysOf', () => {
  it('lists every UTC day of the period, both ends included', () => {
    expect(daysOf('2026-12-01T00:00:00+00:00', '2026-12-03T10:00:00+00:00')).toEqual([
      '2026-12-01',
      '2026-12-02',
      '2026-12-03'
    ]);
  });

  it('crosses months and stays in UTC', () => {
    expect(daysOf('2026-11-30T23:00:00+00:00', '2026-12-01T01:00:00+01:00')).toEqual([
      '2026-11-30',
      '2026-12-01'
    ]);
  });

  it('is empty for nonsense and bounded for centuries', () => {
    expect(daysOf('soon', '2026-12-01')).toEqual([]);
    expect(daysOf('2026-12-02', '2026-12-01')).toEqual([]);
    expect(daysOf('1900-01-01T00:00:00Z', '2100-01-01T00:00:00Z')).toHaveLength(366);
  });
});

describe('jobDay', () => {
  it('counts a job on the day (UTC) it was submitted, as the hub does', () => {
    expect(jobDay(job({ submitted_at: '2026-12-03T23:30:00-02:00' }))).toBe('2026-12-04');
    expect(jobDay(job({ submitted_at: 'yesterday' }))).toBe('');
  });
});

describe('stackByDay', () => {
  it('stacks each day by kind, bottom up, empty days included', () => {
    const stacks = stackByDay(report(), 'core_hours');
    expect(stacks.map(s => s.key)).toEqual([
      '2026-12-01',
      '2026-12-02',
      '2026-12-03',
      '2026-12-04',
      '2026-12-05'
    ]);
    expect(stacks[0]).toEqual({ key: '2026-12-01', total: 0, segments: [] });
    expect(stacks[1].total).toBe(2.5);
    expect(stacks[1].segments).toEqual([
      { kind: 'server', value: 2, y0: 0, y1: 2 },
      { kind: 'dask', value: 0.5, y0: 2, y1: 2.5 }
    ]);
    expect(stacks[3].segments).toEqual([{ kind: 'batch', value: 1, y0: 0, y1: 1 }]);
  });

  it("stacks what the listed jobs do not explain as 'other'", () => {
    const data = report();
    data.by_day[0].core_hours = 10; // the hub counted more jobs than it listed
    const day = stackByDay(data, 'core_hours')[1];
    expect(day.total).toBe(10);
    expect(day.segments.map(s => s.kind)).toEqual(['server', 'dask', 'other']);
    expect(day.segments[2]).toEqual({ kind: 'other', value: 7.5, y0: 2.5, y1: 10 });
  });

  it('ignores rounding differences of the hub', () => {
    const data = report();
    data.by_day[0].energy_kwh = 0.035 + 1e-12;
    const day = stackByDay(data, 'energy_kwh')[1];
    expect(day.segments.map(s => s.kind)).toEqual(['server', 'dask']);
  });
});

describe('usedFraction', () => {
  it.each([
    [0, 10, 0],
    [8, 10, 0.8],
    [12, 10, 1],
    [-1, 10, 0],
    [1, 0, 1]
  ])('%s of %s → %s', (used, limit, fraction) => {
    expect(usedFraction(used, limit)).toBe(fraction);
  });
});
