/**
 * Pure helpers for the remaining walltime: formatting and warning thresholds.
 */

/**
 * Format seconds as `H:MM:SS` (or `M:SS` under an hour).
 *
 * @param seconds - seconds left; null when unknown
 * @returns the text shown to the user
 */
export function formatRemaining(seconds: number | null): string {
  if (seconds === null || !Number.isFinite(seconds)) {
    return '–';
  }
  const total = Math.max(0, Math.floor(seconds));
  const hours = Math.floor(total / 3600);
  const minutes = Math.floor((total % 3600) / 60);
  const secs = total % 60;
  const pad = (n: number): string => n.toString().padStart(2, '0');
  return hours > 0 ? `${hours}:${pad(minutes)}:${pad(secs)}` : `${minutes}:${pad(secs)}`;
}

/**
 * The warning thresholds that are due and not yet given.
 *
 * When several are due at once (a page opened late, a short job), only the
 * most urgent one is returned, and the others are marked as given.
 *
 * @param remainingSeconds - seconds left now
 * @param thresholds - warning thresholds in minutes
 * @param given - thresholds already warned about (updated in place)
 * @returns the threshold to warn about now, or null
 */
export function dueWarning(
  remainingSeconds: number | null,
  thresholds: readonly number[],
  given: Set<number>
): number | null {
  if (remainingSeconds === null) {
    return null;
  }
  const due = thresholds.filter(m => !given.has(m) && remainingSeconds <= m * 60);
  if (due.length === 0) {
    return null;
  }
  due.forEach(m => given.add(m));
  return Math.min(...due);
}

/**
 * The moment the walltime ends, in the browser's clock.
 *
 * The server's `remaining_seconds` is used rather than its end time, so that a
 * difference between the browser's and the server's clocks does not matter.
 *
 * @param remainingSeconds - seconds left when the server answered
 * @param receivedAt - the browser's time (ms) when the answer arrived
 * @returns the end in ms since the epoch, or null when unknown
 */
export function endInBrowserClock(
  remainingSeconds: number | null,
  receivedAt: number
): number | null {
  return remainingSeconds === null ? null : receivedAt + remainingSeconds * 1000;
}

/**
 * Seconds left at `now`, never negative.
 *
 * @param end - the end in ms since the epoch, or null
 * @param now - the current time in ms since the epoch
 * @returns whole seconds left, or null when the end is unknown
 */
export function secondsLeft(end: number | null, now: number): number | null {
  return end === null ? null : Math.max(0, Math.round((end - now) / 1000));
}
