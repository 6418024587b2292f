import { formatBytes } from '@continuum-hub/common';

import { IClusterInfo } from './tokens';

// the age column: `45 s`, `12 min`, `3 h 05 min`, `2 d 4 h`; `–` when unknown; memory in
// binary units: `512.0 MiB`
export { formatAge, formatBytes } from '@continuum-hub/common';

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
