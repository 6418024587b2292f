import { IEstimate, postJSON, requestAPI } from '@continuum-hub/common';
import { URLExt } from '@jupyterlab/coreutils';
import { ServerConnection } from '@jupyterlab/services';

import {
  ICredential,
  IParametersInfo,
  IRun,
  IRunList,
  IRunOptions,
  IWorkflow,
  IWorkflowsAPI
} from './tokens';

/**
 * The batch-run routes of `continuum_lab` (they talk to the hub's workflows service for us).
 */
export const workflowsAPI: IWorkflowsAPI = {
  options: () => requestAPI<IRunOptions>('workflows/options'),
  parameters: path =>
    requestAPI<IParametersInfo>(`workflows/parameters${URLExt.objectToQueryString({ path })}`),
  estimate: query =>
    requestAPI<IEstimate>(`workflows/estimate${URLExt.objectToQueryString(query)}`),
  list: () => requestAPI<IRunList>('workflows/runs'),
  submit: request => requestAPI<IRun>('workflows/runs', postJSON(request)),
  submitWorkflow: path => requestAPI<IWorkflow>('workflows/workflows', postJSON({ path })),
  saveWorkflow: async (path, workflow) =>
    (await requestAPI<{ path: string }>('workflows/file', postJSON({ path, workflow }))).path,
  workflows: async () =>
    (await requestAPI<{ workflows: IWorkflow[] }>('workflows/workflows')).workflows,
  cancel: id => requestAPI<IRun>('workflows/runs/cancel', postJSON({ id })),
  rerun: (id, parameters) =>
    requestAPI<IRun>('workflows/runs/rerun', postJSON(parameters ? { id, parameters } : { id })),
  open: async (id, member) =>
    (
      await requestAPI<{ path: string }>(
        'workflows/runs/open',
        postJSON(member === undefined ? { id } : { id, member })
      )
    ).path,
  archiveUrl: id =>
    URLExt.join(ServerConnection.makeSettings().baseUrl, 'continuum', 'workflows/runs/archive') +
    URLExt.objectToQueryString({ id }),
  credentials: async () =>
    (await requestAPI<{ credentials: ICredential[] }>('workflows/credentials')).credentials,
  revoke: async id => {
    await requestAPI('workflows/credentials/revoke', postJSON({ id }));
  }
};
