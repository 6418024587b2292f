import { postJSON, requestAPI } from '@continuum-hub/common';

import { IClusterList, IClustersAPI } from './tokens';

/**
 * The cluster routes of `continuum_lab` (they talk to the Dask Gateway for us).
 */
export const clustersAPI: IClustersAPI = {
  list: () => requestAPI<IClusterList>('clusters'),
  create: async (options = {}) =>
    (await requestAPI<{ name: string }>('clusters', postJSON({ cluster_options: options }))).name,
  scale: async (name, count) =>
    (await requestAPI<{ message: string | null }>('clusters/scale', postJSON({ name, count })))
      .message,
  stop: async name => {
    await requestAPI('clusters/stop', postJSON({ name }));
  }
};
