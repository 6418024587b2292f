import { formatBytes } from '@continuum-hub/common';

import { Facet, IEntry, ISourceStatus } from './tokens';

/**
 * A source answering slower than this (ms) is marked slow.
 */
export const SLOW_MS = 2000;

/**
 * One source's state in the status line: `demo 12 ms`, `rucio slow (2.5 s)`,
 * `tap unavailable: timed out after 5 s`.
 *
 * @param source - how it answered
 */
export function sourceState(source: ISourceStatus): string {
  if (!source.ok) {
    return `${source.name} unavailable${source.message ? `: ${source.message}` : ''}`;
  }
  const ms = source.latency_ms;
  if (ms === null || ms === undefined) {
    return `${source.name} ok`;
  }
  return ms >= SLOW_MS
    ? `${source.name} slow (${(ms / 1000).toFixed(1)} s)`
    : `${source.name} ${Math.round(ms)} ms`;
}

/**
 * A facet's values for the filter list: counted ones by count (largest first, then by name),
 * and the selected ones even when the current results count none of them.
 *
 * @param counts - value → count of the current search
 * @param selected - the selected values
 */
export function facetValues(
  counts: Record<string, number> | undefined,
  selected: readonly string[]
): { value: string; count: number; selected: boolean }[] {
  const all = new Map<string, number>(Object.entries(counts ?? {}));
  for (const value of selected) {
    if (!all.has(value)) {
      all.set(value, 0);
    }
  }
  return [...all.entries()]
    .sort(([a, x], [b, y]) => y - x || a.localeCompare(b))
    .map(([value, count]) => ({ value, count, selected: selected.includes(value) }));
}

/**
 * The facets' titles in the panel.
 */
export const FACET_TITLES: Record<Facet, string> = {
  source: 'Source',
  kind: 'Kind',
  vo: 'VO',
  site: 'Site',
  format: 'Format'
};

/**
 * The line under a result's title: kind, format, VO, sites, size.
 *
 * @param entry - the result
 */
export function resultLine(entry: IEntry): string {
  const parts = [
    entry.kind,
    entry.format,
    entry.vo,
    entry.sites.join(', '),
    formatBytes(entry.size)
  ];
  return parts.filter(p => p && p !== '–').join(' · ');
}
