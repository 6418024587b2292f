import { PollingModel } from '@continuum-hub/common';

import { clustersAPI } from './request';
import { IClusterInfo, IClustersAPI, IClustersModel } from './tokens';

/**
 * The clusters model: polls the server extension, and refreshes after each action.
 */
export class ClustersModel extends PollingModel implements IClustersModel {
  /**
   * @param api - the server extension's cluster routes (a seam for tests)
   */
  constructor(api: IClustersAPI = clustersAPI) {
    super();
    this._api = api;
  }

  get clusters(): IClusterInfo[] | null {
    return this._clusters;
  }

  async create(options: Record<string, unknown> = {}): Promise<string> {
    return this.act(() => this._api.create(options));
  }

  async scale(name: string, count: number): Promise<void> {
    const note = await this.act(() => this._api.scale(name, count));
    this._note = note;
  }

  async stop(name: string): Promise<void> {
    await this.act(() => this._api.stop(name));
  }

  /**
   * The gateway's remark about the last scale request (e.g. capped at its maximum), if any.
   */
  get note(): string | null {
    return this._note;
  }

  protected async load(): Promise<number> {
    const answer = await this._api.list();
    this._clusters = answer.clusters;
    return answer.refresh_seconds;
  }

  private _api: IClustersAPI;
  private _clusters: IClusterInfo[] | null = null;
  private _note: string | null = null;
}
