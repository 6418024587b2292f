import { NAMESPACE, requestAPI } from '@continuum-hub/common';
import { URLExt } from '@jupyterlab/coreutils';
import { ServerConnection } from '@jupyterlab/services';

import { IUsageReport } from './tokens';

/** The route of the `continuum_lab` server extension, below `{baseUrl}continuum/`. */
export const USAGE_ROUTE = 'usage';

/**
 * This month's usage of the signed-in user, as the hub reports it through the server.
 *
 * @returns the answer of `GET {baseUrl}continuum/usage`
 */
export function fetchUsage(): Promise<IUsageReport> {
  return requestAPI<IUsageReport>(USAGE_ROUTE);
}

/**
 * Where the browser downloads the month's jobs as CSV (the server passes the hub's on).
 *
 * @param settings - the server connection (defaults to the page's)
 */
export function csvUrl(
  settings: ServerConnection.ISettings = ServerConnection.makeSettings()
): string {
  return URLExt.join(settings.baseUrl, NAMESPACE, USAGE_ROUTE) + '?format=csv';
}
