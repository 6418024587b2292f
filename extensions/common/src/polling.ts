import { ISignal, Signal } from '@lumino/signaling';

/**
 * Seconds between refreshes before the server has said, and their lower bound.
 */
export const DEFAULT_REFRESH_SECONDS = 10;
export const MIN_REFRESH_SECONDS = 2;

/**
 * The message of an error for a panel: an `Error`'s message (a `ServerConnection.ResponseError`
 * carries the server's), else the value as text.
 *
 * @param error - what was thrown
 */
export function errorMessage(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/**
 * A panel's model that asks the server extension periodically, and again after each action.
 *
 * Subclasses implement {@link load} (fetch and keep the data; return the seconds until the next
 * refresh that the server asks for) and wrap their actions in {@link act}.
 */
export abstract class PollingModel {
  /**
   * The last error (e.g. the service cannot be reached); null when the last refresh worked.
   */
  get error(): string | null {
    return this._error;
  }

  /**
   * Emitted after every refresh.
   */
  get changed(): ISignal<this, void> {
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

  /**
   * Ask the server extension again now; a failure becomes {@link error}, the data stay.
   */
  async refresh(): Promise<void> {
    try {
      this._refreshSeconds = Math.max(MIN_REFRESH_SECONDS, await this.load());
      this._error = null;
    } catch (error) {
      this._error = errorMessage(error);
    }
    this._changed.emit();
    this._schedule();
  }

  /**
   * Fetch and keep the data.
   *
   * @returns the seconds until the next refresh (the server's setting)
   */
  protected abstract load(): Promise<number>;

  /**
   * Run an action, then refresh whatever happened (a failure reaches the caller, who shows it;
   * {@link error} stays the server's state).
   *
   * @param action - the request
   * @returns what the action returns
   */
  protected async act<T>(action: () => Promise<T>): Promise<T> {
    try {
      return await action();
    } finally {
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

  private _error: string | null = null;
  private _refreshSeconds = DEFAULT_REFRESH_SECONDS;
  private _running = false;
  private _timer: number | null = null;
  private _changed = new Signal<this, void>(this);
}
