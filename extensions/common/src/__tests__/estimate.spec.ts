import { budgetLine, estimateLine, IBudgetStatus, IEstimate } from '../index';

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

function status(overrides: Partial<IBudgetStatus> = {}): IBudgetStatus {
  return {
    scope: 'user',
    name: 'alice',
    resource: 'core_hours',
    unit: 'core-hours',
    limit: 10,
    used: 8.5,
    left: 1.5,
    resets: '2027-01-01T00:00:00+00:00',
    contact: "the hub's administrators",
    warning: true,
    ...overrides
  };
}

describe('budgetLine', () => {
  it('says nothing below 80 %', () => {
    expect(budgetLine(model({ budgets: [status({ warning: false })] }))).toBe('');
    expect(budgetLine(model())).toBe('');
  });

  it('warns per limit at 80 % and after the estimate line', () => {
    const warned = model({
      budgets: [
        status(),
        status({ scope: 'vo', name: 'vo.hep.example', warning: false }),
        status({ scope: 'vo', name: 'vo.hep.example', resource: 'co2e_kg', unit: 'kg CO2e' })
      ]
    });
    const line =
      "Budget warning: your budget has 1.5 of 10 core-hours left this month (resets 2027-01-01; the hub's administrators)" +
      " · Budget warning: vo.hep.example budget has 1.5 of 10 kg CO2e left this month (resets 2027-01-01; the hub's administrators)";
    expect(budgetLine(warned)).toBe(line);
    expect(estimateLine({ ...warned, wait_seconds: 30 })).toBe(
      'Expected start on alpha / batch: now · at most 0.048 kWh, 12.5 g CO2e if used in full. ' +
        line
    );
  });

  it('puts a refusal before the warnings, also without a start estimate', () => {
    const refusal = 'Your monthly budget has 0.1 core-hours left of 0.1; …';
    const refused = model({ wait_seconds: null, budget_refusal: refusal, budgets: [status()] });
    expect(budgetLine(refused)).toBe(refusal);
    expect(estimateLine(refused)).toBe(`No estimate for alpha / batch. ${refusal}`);
  });
});
