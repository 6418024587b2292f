import { IEstimate, postJSON, requestAPI } from '@continuum-hub/common';

import { IClusterDialogAPI } from './cluster-dialog';
import { IOptionField } from './cluster-form';
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

/**
 * The routes the *New Dask cluster* dialog uses: the gateway's options, create, and the hub's
 * estimate (the batch-run dialog's route: the spawn form's fields and model).
 */
export const clusterDialogAPI: IClusterDialogAPI = {
  options: async () =>
    (await requestAPI<{ cluster_options: IOptionField[] }>('clusters/options')).cluster_options,
  create: options => clustersAPI.create(options),
  estimate: query =>
    requestAPI<IEstimate>(`workflows/estimate?${new URLSearchParams(query).toString()}`)
};
