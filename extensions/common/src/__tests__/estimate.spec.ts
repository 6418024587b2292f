import { estimateLine, IEstimate } from '../index';

function model(overrides: Partial<IEstimate> = {}): IEstimate {
  return {
    site: 'alpha',
    partition: 'batch',
    start_time: '2026-12-04T23:40:00Z',
    wait_seconds: 300,
    message: '',
    energy_kwh_max: 0.048,
    gco2e_max: 12.5,
    ...overrides
  };
}

describe('estimateLine', () => {
  it.each([
    [
      'a wait with an impact bound',
      model(),
      'Expected start on alpha / batch: in about 5 min · at most 0.048 kWh, 12.5 g CO2e if used in full'
    ],
    [
      'a start within the minute',
      model({ wait_seconds: 59 }),
      'Expected start on alpha / batch: now · at most 0.048 kWh, 12.5 g CO2e if used in full'
    ],
    [
      'minutes rounded',
      model({ wait_seconds: 150, energy_kwh_max: null, gco2e_max: null }),
      'Expected start on alpha / batch: in about 3 min'
    ],
    [
      'no start, with the scheduler’s reason',
      model({ wait_seconds: null, start_time: null, message: 'site alpha did not answer' }),
      'No estimate for alpha / batch: site alpha did not answer'
    ],
    [
      'no start, no reason',
      model({ wait_seconds: null, message: null }),
      'No estimate for alpha / batch'
    ]
  ])('writes %s as the spawn form does', (_, estimate, line) => {
    expect(estimateLine(estimate)).toBe(line);
  });
});
