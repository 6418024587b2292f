import { requestAPI } from '@continuum-hub/common';
import { URLExt } from '@jupyterlab/coreutils';
import { ServerConnection } from '@jupyterlab/services';

import { IJobInfo } from './tokens';

/**
 * The job behind this server, as the `continuum_lab` server extension reports it.
 *
 * @returns the answer of `GET {baseUrl}continuum/session`
 */
export function fetchJobInfo(): Promise<IJobInfo> {
  return requestAPI<IJobInfo>('session');
}

/**
 * Ask the Jupyter server to shut itself down: the request JupyterLab's own
 * "File > Shut Down" makes. The batch job ends with it, and the hub notices.
 *
 * @param settings - the server connection (defaults to the page's)
 */
export async function shutdownServer(
  settings: ServerConnection.ISettings = ServerConnection.makeSettings()
): Promise<void> {
  const url = URLExt.join(settings.baseUrl, 'api', 'shutdown');
  const response = await ServerConnection.makeRequest(url, { method: 'POST' }, settings);
  if (!response.ok) {
    throw new ServerConnection.ResponseError(response);
  }
}
