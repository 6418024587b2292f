import { PollingModel } from '@continuum-hub/common';

import { workflowsAPI } from './request';
import { ICredential, IRun, IRunsModel, IWorkflow, IWorkflowsAPI } from './tokens';

/**
 * The runs model: polls the server extension for runs and credentials, and refreshes after
 * each action.
 */
export class RunsModel extends PollingModel implements IRunsModel {
  /**
   * @param api - the server extension's batch-run routes (a seam for tests)
   */
  constructor(api: IWorkflowsAPI = workflowsAPI) {
    super();
    this._api = api;
  }

  get runs(): IRun[] | null {
    return this._runs;
  }

  get credentials(): ICredential[] | null {
    return this._credentials;
  }

  get workflows(): IWorkflow[] | null {
    return this._workflows;
  }

  /**
   * The API the model uses (the dialogs submit through the same one).
   */
  get api(): IWorkflowsAPI {
    return this._api;
  }

  async cancel(id: string): Promise<void> {
    await this.act(() => this._api.cancel(id));
  }

  async rerun(id: string, parameters?: Record<string, unknown>): Promise<IRun> {
    return this.act(() => this._api.rerun(id, parameters));
  }

  async revoke(id: string): Promise<void> {
    await this.act(() => this._api.revoke(id));
  }

  protected async load(): Promise<number> {
    const [runs, credentials, workflows] = await Promise.allSettled([
      this._api.list(),
      this._api.credentials(),
      this._api.workflows()
    ]);
    // the credentials and workflow lists are secondary: their failure keeps the last ones
    if (credentials.status === 'fulfilled') {
      this._credentials = credentials.value;
    }
    if (workflows.status === 'fulfilled') {
      this._workflows = workflows.value;
    }
    if (runs.status === 'rejected') {
      throw runs.reason;
    }
    this._runs = runs.value.runs;
    return runs.value.refresh_seconds;
  }

  private _api: IWorkflowsAPI;
  private _runs: IRun[] | null = null;
  private _credentials: ICredential[] | null = null;
  private _workflows: IWorkflow[] | null = null;
}
