import {
  countStates,
  describeMember,
  describeRun,
  formatValue,
  formatWhere,
  isFinal,
  memberValue,
  parameterNames
} from '../format';
import { member, run, sweepRun } from './fake-api';

describe('describeMember', () => {
  it.each([
    [{ state: 'queued', reason: 'Priority' }, 'queued (Priority)'],
    [{ state: 'pending', reason: '' }, 'pending'],
    [{ state: 'running', cell: 3, cells: 7 }, 'running · cell 3/7'],
    [{ state: 'running', cell: null, cells: null }, 'running'],
    [
      { state: 'failed', cell: 4, cells: 7, reason: 'NameError: x' },
      'failed at cell 4/7: NameError: x'
    ],
    [{ state: 'failed', cell: null, reason: 'node failure' }, 'failed: node failure'],
    [{ state: 'needs-sign-in', reason: 'sign in again' }, 'needs sign-in: sign in again'],
    [{ state: 'cancelled', reason: 'step simulate failed' }, 'cancelled: step simulate failed'],
    [{ state: 'done', cell: 7, cells: 7 }, 'done']
  ] as const)('%j → %s', (overrides, expected) => {
    expect(describeMember(member({ reason: '', ...overrides }))).toBe(expected);
  });
});

describe('describeRun', () => {
  it('shows a single run through its member, with the run’s reason as fallback', () => {
    expect(describeRun(run())).toBe('running · cell 3/7');
    const queued = run({
      state: 'queued',
      reason: 'Resources',
      members: [member({ state: 'queued', cell: null, cells: null })]
    });
    expect(describeRun(queued)).toBe('queued (Resources)');
    expect(describeRun(run({ state: 'done', members: [] }))).toBe('done');
  });

  it('counts a sweep’s members by state', () => {
    expect(describeRun(sweepRun())).toBe('running — 3 members: 1 running · 1 done · 1 failed');
    expect(countStates([])).toBe('');
  });
});

describe('small formats', () => {
  it('formats places, values and finality', () => {
    expect(formatWhere(run())).toBe('alpha › batch');
    expect(formatValue('a')).toBe('a');
    expect(formatValue([1, 'b'])).toBe('[1,"b"]');
    expect(formatValue(undefined)).toBe('');
    expect(isFinal('done')).toBe(true);
    expect(isFinal('needs-sign-in')).toBe(false);
  });

  it('lists a sweep’s parameters and each member’s values', () => {
    const sweep = sweepRun();
    expect(parameterNames(sweep)).toEqual(['label', 'rate']);
    expect(memberValue(sweep, sweep.members[2], 'rate')).toBe(0.4);
    expect(memberValue(sweep, sweep.members[2], 'label')).toBe('A');
  });
});
