import { postJSON, requestAPI } from '@continuum-hub/common';
import { URLExt } from '@jupyterlab/coreutils';

import { ICredential, IParametersInfo, IRun, IRunList, IRunOptions, IWorkflowsAPI } from './tokens';

/**
 * The batch-run routes of `continuum_lab` (they talk to the hub's workflows service for us).
 */
export const workflowsAPI: IWorkflowsAPI = {
  options: () => requestAPI<IRunOptions>('workflows/options'),
  parameters: path =>
    requestAPI<IParametersInfo>(`workflows/parameters${URLExt.objectToQueryString({ path })}`),
  list: () => requestAPI<IRunList>('workflows/runs'),
  submit: request => requestAPI<IRun>('workflows/runs', postJSON(request)),
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
  credentials: async () =>
    (await requestAPI<{ credentials: ICredential[] }>('workflows/credentials')).credentials,
  revoke: async id => {
    await requestAPI('workflows/credentials/revoke', postJSON({ id }));
  }
};
