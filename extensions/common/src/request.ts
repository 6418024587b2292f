import { URLExt } from '@jupyterlab/coreutils';
import { ServerConnection } from '@jupyterlab/services';

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
 * @throws ServerConnection.NetworkError when the server cannot be reached
 * @throws ServerConnection.ResponseError when it answers with an error status (the message is
 *   the answer's `message`, else its text)
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

/**
 * The options of a `POST` request with `body` as JSON.
 *
 * @param body - what to send (serialized with `JSON.stringify`)
 * @returns the request's options, for {@link requestAPI}
 */
export function postJSON(body: unknown): RequestInit {
  return { method: 'POST', body: JSON.stringify(body) };
}
