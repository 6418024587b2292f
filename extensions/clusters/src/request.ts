import { URLExt } from '@jupyterlab/coreutils';
import { ServerConnection } from '@jupyterlab/services';

import { IClusterList, IClustersAPI } from './tokens';

/**
 * The namespace of the `continuum_lab` server extension's routes.
 */
export const NAMESPACE = 'continuum';

/**
 * Call a route of the `continuum_lab` server extension.
 *
 * @param endPoint - the route below `{baseUrl}continuum/`
 * @param init - the request's options
 * @param settings - the server connection (defaults to the page's)
 * @returns the parsed JSON answer
 */
export async function requestAPI<T>(
  endPoint = '',
  init: RequestInit = {},
  settings: ServerConnection.ISettings = ServerConnection.makeSettings()
): Promise<T> {
  const url = URLExt.join(settings.baseUrl, NAMESPACE, endPoint);
  let response: Response;
  try {
    response = await ServerConnection.makeRequest(url, init, settings);
  } catch (error) {
    throw new ServerConnection.NetworkError(error as TypeError);
  }
  const text = await response.text();
  let data: unknown = text;
  if (text.length > 0) {
    try {
      data = JSON.parse(text);
    } catch {
      console.error('continuum_lab: not a JSON answer', text);
    }
  }
  if (!response.ok) {
    const message =
      typeof data === 'object' && data !== null && 'message' in data
        ? String((data as { message: unknown }).message)
        : text;
    throw new ServerConnection.ResponseError(response, message);
  }
  return data as T;
}

function post(body: unknown): RequestInit {
  return { method: 'POST', body: JSON.stringify(body) };
}

/**
 * The cluster routes of `continuum_lab` (they talk to the Dask Gateway for us).
 */
export const clustersAPI: IClustersAPI = {
  list: () => requestAPI<IClusterList>('clusters'),
  create: async (options = {}) =>
    (await requestAPI<{ name: string }>('clusters', post({ cluster_options: options }))).name,
  scale: async (name, count) =>
    (await requestAPI<{ message: string | null }>('clusters/scale', post({ name, count }))).message,
  stop: async name => {
    await requestAPI('clusters/stop', post({ name }));
  }
};
