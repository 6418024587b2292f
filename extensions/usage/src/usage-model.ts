import { DEFAULT_REFRESH_SECONDS, PollingModel } from '@continuum-hub/common';

import { fetchUsage } from './request';
import { IUsageReport } from './tokens';

/** How the model gets the report (the server extension's route; a stub in tests). */
export type UsageFetcher = () => Promise<IUsageReport>;

/**
 * The Usage panel's model: the month's report, asked again every `refresh_seconds`
 * (the server's setting; the collector itself runs every few minutes).
 */
export class UsageModel extends PollingModel {
  /**
   * @param fetch - where the report comes from
   */
  constructor(fetch: UsageFetcher = fetchUsage) {
    super();
    this._fetch = fetch;
  }

  /** The last report; null until the first answer. */
  get report(): IUsageReport | null {
    return this._report;
  }

  protected async load(): Promise<number> {
    this._report = await this._fetch();
    return this._report.refresh_seconds ?? DEFAULT_REFRESH_SECONDS;
  }

  private _fetch: UsageFetcher;
  private _report: IUsageReport | null = null;
}
