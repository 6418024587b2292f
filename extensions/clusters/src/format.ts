import { IClusterInfo } from './tokens';

// the age column: `45 s`, `12 min`, `3 h 05 min`, `2 d 4 h`; `–` when unknown
export { formatAge } from '@continuum-hub/common';

/**
 * Bytes in binary units with one decimal: `512.0 MiB`, `2.0 GiB`; `–` when unknown.
 *
 * @param bytes - a byte count, or null
 */
export function formatBytes(bytes: number | null): string {
  if (bytes === null || !Number.isFinite(bytes) || bytes < 0) {
    return '–';
  }
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit += 1;
  }
  return unit === 0 ? `${value} B` : `${value.toFixed(1)} ${units[unit]}`;
}

/**
 * The resources column: `4 cores · 2.0 GiB`, or `–` while unknown.
 *
 * @param cluster - the cluster
 */
export function formatResources(cluster: IClusterInfo): string {
  if (cluster.threads === null && cluster.memory_bytes === null) {
    return '–';
  }
  const cores = cluster.threads ?? 0;
  return `${cores} ${cores === 1 ? 'core' : 'cores'} · ${formatBytes(cluster.memory_bytes)}`;
}

/**
 * A worker count typed by the user, or an explanation of why it is not one.
 *
 * @param text - the number input's value
 * @param maximum - the largest count accepted
 * @returns the count, or an error message
 */
export function parseCount(text: string, maximum = 10_000): number | string {
  const trimmed = text.trim();
  if (!/^\d+$/.test(trimmed)) {
    return 'Enter a whole number of workers.';
  }
  const count = Number(trimmed);
  return count > maximum ? `At most ${maximum} workers.` : count;
}
