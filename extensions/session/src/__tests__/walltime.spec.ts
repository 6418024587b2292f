import { dueWarning, endInBrowserClock, formatRemaining, secondsLeft } from '../walltime';

describe('formatRemaining', () => {
  it.each([
    [null, '–'],
    [0, '0:00'],
    [59, '0:59'],
    [61, '1:01'],
    [3599, '59:59'],
    [3600, '1:00:00'],
    [3 * 3600 + 62, '3:01:02'],
    [-5, '0:00']
  ])('formats %p as %p', (seconds, text) => {
    expect(formatRemaining(seconds)).toBe(text);
  });
});

describe('dueWarning', () => {
  it('warns at each threshold once, in order', () => {
    const given = new Set<number>();
    expect(dueWarning(20 * 60, [15, 5], given)).toBeNull();
    expect(dueWarning(15 * 60, [15, 5], given)).toBe(15);
    expect(dueWarning(14 * 60, [15, 5], given)).toBeNull();
    expect(dueWarning(5 * 60 - 1, [15, 5], given)).toBe(5);
    expect(dueWarning(10, [15, 5], given)).toBeNull();
  });

  it('gives only the most urgent warning when several are due at once', () => {
    const given = new Set<number>();
    expect(dueWarning(3 * 60, [15, 5], given)).toBe(5);
    expect(given).toEqual(new Set([15, 5]));
    expect(dueWarning(60, [15, 5], given)).toBeNull();
  });

  it('does not warn without an end or without thresholds', () => {
    expect(dueWarning(null, [15, 5], new Set())).toBeNull();
    expect(dueWarning(60, [], new Set())).toBeNull();
  });
});

describe('the browser clock', () => {
  it('counts down from the server answer, whatever the clocks say', () => {
    const end = endInBrowserClock(90, 1_000_000);
    expect(secondsLeft(end, 1_000_000)).toBe(90);
    expect(secondsLeft(end, 1_030_000)).toBe(60);
    expect(secondsLeft(end, 2_000_000)).toBe(0);
    expect(secondsLeft(endInBrowserClock(null, 0), 0)).toBeNull();
  });
});
