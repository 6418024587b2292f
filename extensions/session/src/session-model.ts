import { ISignal, Signal } from '@lumino/signaling';

import { fetchJobInfo } from './request';
import { IJobInfo, ISessionModel, IWalltimeWarning } from './tokens';
import { dueWarning, endInBrowserClock, secondsLeft } from './walltime';

/**
 * How the model fetches the job information (a seam for tests).
 */
export type JobInfoFetcher = () => Promise<IJobInfo>;

/**
 * The session model: polls the server extension and counts the walltime down.
 */
export class SessionModel implements ISessionModel {
  /**
   * @param fetcher - how to get the job information (defaults to the server extension)
   * @param clock - the current time in ms (defaults to `Date.now`)
   */
  constructor(fetcher: JobInfoFetcher = fetchJobInfo, clock: () => number = Date.now) {
    this._fetch = fetcher;
    this._clock = clock;
  }

  get info(): IJobInfo | null {
    return this._info;
  }

  get remainingSeconds(): number | null {
    return secondsLeft(this._end, this._clock());
  }

  get error(): string | null {
    return this._error;
  }

  get changed(): ISignal<ISessionModel, void> {
    return this._changed;
  }

  get warning(): ISignal<ISessionModel, IWalltimeWarning> {
    return this._warning;
  }

  /**
   * Start polling and counting down.
   */
  start(): void {
    if (this._tick === null) {
      this._tick = window.setInterval(() => this.tick(), 1000);
    }
    void this.refresh();
  }

  /**
   * Stop polling and counting down.
   */
  dispose(): void {
    if (this._tick !== null) {
      window.clearInterval(this._tick);
      this._tick = null;
    }
    Signal.clearData(this);
  }

  async refresh(): Promise<void> {
    try {
      const info = await this._fetch();
      this._info = info;
      this._error = null;
      this._end = endInBrowserClock(info.remaining_seconds, this._clock());
      this._nextRefresh = this._clock() + Math.max(5, info.settings.refresh_seconds) * 1000;
    } catch (error) {
      this._error = error instanceof Error ? error.message : String(error);
      // try again sooner than the regular interval
      this._nextRefresh = this._clock() + 15_000;
    }
    this.tick();
  }

  /**
   * One second of the countdown: emit the change and any due warning, refresh when due.
   */
  tick(): void {
    this._changed.emit();
    const thresholds = this._info?.settings.warning_minutes ?? [];
    const minutes = dueWarning(this.remainingSeconds, thresholds, this._given);
    if (minutes !== null) {
      this._warning.emit({ minutes, remainingSeconds: this.remainingSeconds ?? 0 });
    }
    if (this._nextRefresh !== null && this._clock() >= this._nextRefresh) {
      this._nextRefresh = null;
      void this.refresh();
    }
  }

  private _fetch: JobInfoFetcher;
  private _clock: () => number;
  private _info: IJobInfo | null = null;
  private _error: string | null = null;
  private _end: number | null = null;
  private _given = new Set<number>();
  private _nextRefresh: number | null = null;
  private _tick: number | null = null;
  private _changed = new Signal<ISessionModel, void>(this);
  private _warning = new Signal<ISessionModel, IWalltimeWarning>(this);
}
