/**
 * Times as people say them, in the user's locale: "3 minutes ago", "in 2 hours", with the
 * absolute time for a tooltip (Intl.RelativeTimeFormat and Intl.DateTimeFormat).
 */

const UNITS: [Intl.RelativeTimeFormatUnit, number][] = [
  ['second', 60],
  ['minute', 60],
  ['hour', 24],
  ['day', 7],
  ['week', 4.35],
  ['month', 12],
  ['year', Infinity]
];

/**
 * When `time` is relative to `now`: "5 seconds ago", "3 minutes ago", "in 2 hours", "now".
 *
 * @param time - the moment (a Date, epoch milliseconds or an ISO 8601 string)
 * @param now - the present, epoch milliseconds (a parameter so that tests are exact)
 * @param locale - the BCP 47 locale; the browser's when undefined
 * @returns the text, or `–` when the time is unknown or invalid
 */
export function relativeTime(
  time: Date | number | string | null | undefined,
  now: number = Date.now(),
  locale?: string
): string {
  const at = toMillis(time);
  if (at === null) {
    return '–';
  }
  const format = new Intl.RelativeTimeFormat(locale, { numeric: 'auto', style: 'long' });
  let value = (at - now) / 1000;
  for (const [unit, size] of UNITS) {
    if (Math.abs(value) < size) {
      return format.format(Math.trunc(value), unit);
    }
    value /= size;
  }
  return '–'; // unreachable: the last unit's size is infinite
}

/**
 * The absolute time for a tooltip, e.g. "5 Dec 2026, 14:03:07" in the user's locale.
 *
 * @param time - the moment
 * @param locale - the BCP 47 locale; the browser's when undefined
 * @returns the text, or an empty string when unknown
 */
export function absoluteTime(
  time: Date | number | string | null | undefined,
  locale?: string
): string {
  const at = toMillis(time);
  if (at === null) {
    return '';
  }
  return new Intl.DateTimeFormat(locale, { dateStyle: 'medium', timeStyle: 'medium' }).format(at);
}

/**
 * Put a relative time into an element: `prefix` and the relative text, the absolute time on
 * hover and in `datetime` when the element is a `<time>`.
 *
 * @param node - the element (a table cell or a `<time>`)
 * @param time - the moment
 * @param prefix - words before the time ("started ")
 * @param now - the present, epoch milliseconds
 */
export function showRelativeTime(
  node: HTMLElement,
  time: Date | number | string | null | undefined,
  prefix = '',
  now: number = Date.now()
): void {
  const at = toMillis(time);
  node.textContent = at === null ? '–' : `${prefix}${relativeTime(at, now)}`;
  node.title = absoluteTime(at);
  if (node instanceof HTMLTimeElement && at !== null) {
    node.dateTime = new Date(at).toISOString();
  }
}

/**
 * The moment a duration ago: for servers that report an age rather than a start time.
 *
 * @param seconds - the age in seconds, or null
 * @param now - the present, epoch milliseconds
 * @returns epoch milliseconds, or null when unknown
 */
export function startedAt(
  seconds: number | null | undefined,
  now: number = Date.now()
): number | null {
  if (seconds === null || seconds === undefined || !Number.isFinite(seconds) || seconds < 0) {
    return null;
  }
  return now - seconds * 1000;
}

function toMillis(time: Date | number | string | null | undefined): number | null {
  if (time === null || time === undefined || time === '') {
    return null;
  }
  const at =
    time instanceof Date ? time.getTime() : typeof time === 'number' ? time : Date.parse(time);
  return Number.isFinite(at) ? at : null;
}
