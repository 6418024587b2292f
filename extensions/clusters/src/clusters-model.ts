import { ISignal, Signal } from '@lumino/signaling';

import { clustersAPI } from './request';
import { IClusterInfo, IClustersAPI, IClustersModel } from './tokens';

/**
 * Seconds between refreshes before the server has said (and its lower bound).
 */
const DEFAULT_REFRESH_SECONDS = 10;
const MIN_REFRESH_SECONDS = 2;

/**
 * The clusters model: polls the server extension, and refreshes after each action.
 */
export class ClustersModel implements IClustersModel {
  /**
   * @param api - the server extension's cluster routes (a seam for tests)
   */
  constructor(api: IClustersAPI = clustersAPI) {
    this._api = api;
  }

  get clusters(): IClusterInfo[] | null {
    return this._clusters;
  }

  get error(): string | null {
    return this._error;
  }

  get changed(): ISignal<IClustersModel, void> {
    return this._changed;
  }

  /**
   * Seconds until the next periodic refresh.
   */
  get refreshSeconds(): number {
    return this._refreshSeconds;
  }

  /**
   * Start refreshing periodically (the first refresh now).
   */
  start(): void {
    this._running = true;
    void this.refresh();
  }

  /**
   * Stop refreshing.
   */
  dispose(): void {
    this._running = false;
    if (this._timer !== null) {
      window.clearTimeout(this._timer);
      this._timer = null;
    }
    Signal.clearData(this);
  }

  async refresh(): Promise<void> {
    try {
      const answer = await this._api.list();
      this._clusters = answer.clusters;
      this._error = null;
      this._refreshSeconds = Math.max(MIN_REFRESH_SECONDS, answer.refresh_seconds);
    } catch (error) {
      this._error = message(error);
    }
    this._changed.emit();
    this._schedule();
  }

  async create(options: Record<string, unknown> = {}): Promise<string> {
    return this._act(() => this._api.create(options));
  }

  async scale(name: string, count: number): Promise<void> {
    const note = await this._act(() => this._api.scale(name, count));
    this._note = note;
  }

  async stop(name: string): Promise<void> {
    await this._act(() => this._api.stop(name));
  }

  /**
   * The gateway's remark about the last scale request (e.g. capped at its maximum), if any.
   */
  get note(): string | null {
    return this._note;
  }

  private async _act<T>(action: () => Promise<T>): Promise<T> {
    // failures reach the caller (the panel shows them); the list's error is the gateway's state
    try {
      return await action();
    } finally {
      // show the effect soon, whatever happened
      void this.refresh();
    }
  }

  private _schedule(): void {
    if (this._timer !== null) {
      window.clearTimeout(this._timer);
      this._timer = null;
    }
    if (this._running) {
      this._timer = window.setTimeout(() => void this.refresh(), this._refreshSeconds * 1000);
    }
  }

  private _api: IClustersAPI;
  private _clusters: IClusterInfo[] | null = null;
  private _error: string | null = null;
  private _note: string | null = null;
  private _refreshSeconds = DEFAULT_REFRESH_SECONDS;
  private _running = false;
  private _timer: number | null = null;
  private _changed = new Signal<IClustersModel, void>(this);
}

function message(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
