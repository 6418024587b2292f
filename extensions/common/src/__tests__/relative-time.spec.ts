import { absoluteTime, relativeTime, showRelativeTime, startedAt } from '../relative-time';

describe('relativeTime', () => {
  const now = Date.parse('2026-12-05T12:00:00Z');

  it('says how long ago, in the largest whole unit', () => {
    expect(relativeTime(now - 5_000, now, 'en')).toBe('5 seconds ago');
    expect(relativeTime(now - 3 * 60_000 - 20_000, now, 'en')).toBe('3 minutes ago');
    expect(relativeTime('2026-12-05T09:30:00Z', now, 'en')).toBe('2 hours ago');
    expect(relativeTime(new Date(now - 3 * 86_400_000), now, 'en')).toBe('3 days ago');
    expect(relativeTime(now, now, 'en')).toBe('now');
  });

  it('says how far ahead', () => {
    expect(relativeTime(now + 2 * 3_600_000, now, 'en')).toBe('in 2 hours');
    expect(relativeTime(now + 86_400_000, now, 'en')).toBe('tomorrow');
  });

  it("speaks the user's language", () => {
    expect(relativeTime(now - 3 * 60_000, now, 'de')).toBe('vor 3 Minuten');
    expect(relativeTime(now - 3 * 60_000, now, 'fr')).toBe('il y a 3 minutes');
  });

  it('shows a dash for unknown or invalid times', () => {
    expect(relativeTime(null, now)).toBe('–');
    expect(relativeTime(undefined, now)).toBe('–');
    expect(relativeTime('', now)).toBe('–');
    expect(relativeTime('not a date', now)).toBe('–');
  });
});

describe('absoluteTime', () => {
  it('gives date and time in the locale, empty when unknown', () => {
    const text = absoluteTime('2026-12-05T12:03:07Z', 'en-GB');
    expect(text).toMatch(/5 Dec 2026/);
    expect(text).toMatch(/:03:07/);
    expect(absoluteTime(null)).toBe('');
  });
});

describe('showRelativeTime', () => {
  const now = Date.parse('2026-12-05T12:00:00Z');

  it('writes the relative text, the absolute time on hover and datetime', () => {
    const node = document.createElement('time');
    showRelativeTime(node, now - 3 * 60_000, 'started ', now);
    expect(node.textContent).toMatch(/^started 3 min/);
    expect(node.title).toBe(absoluteTime(now - 3 * 60_000));
    expect(node.dateTime).toBe('2026-12-05T11:57:00.000Z');
  });

  it('writes a dash and no tooltip when unknown', () => {
    const node = document.createElement('td');
    showRelativeTime(node, null, 'started ', now);
    expect(node.textContent).toBe('–');
    expect(node.title).toBe('');
  });
});

describe('startedAt', () => {
  it('turns an age into a start time', () => {
    expect(startedAt(90, 1_000_000)).toBe(910_000);
    expect(startedAt(null)).toBeNull();
    expect(startedAt(-1)).toBeNull();
  });
});
