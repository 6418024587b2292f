/**
 * Whether the user instructs an event, asked until they do: someone who creates an event (or is
 * made an event's instructor) while their lab is open gets the *Workshops* panel without a
 * reload.
 */
/** Seconds between two checks while the lab stays in view. */
export const RECHECK_SECONDS = 180;

/** The fewest seconds between two checks caused by the lab regaining focus. */
export const MIN_GAP_SECONDS = 15;

/** When {@link InstructorWatch} asks again. */
export interface IWatchOptions {
  /** Seconds between periodic checks ({@link RECHECK_SECONDS}). */
  periodSeconds?: number;
  /** Seconds a focus or visibility change waits after the last check ({@link MIN_GAP_SECONDS}). */
  minGapSeconds?: number;
}

/**
 * Asks `check` at once, whenever the page regains focus or becomes visible again (an instructor
 * who made an event on the hub's page comes back to the lab's tab: that is when the panel is
 * wanted) and every few minutes; calls `found` once, the first time `check` says yes, and stops.
 * A failed check counts as no (the hub may be restarting: the next one asks again).
 */
export class InstructorWatch {
  /**
   * @param check - whether the user instructs an event now
   * @param found - adds the panel (called at most once)
   * @param options - how often to ask
   */
  constructor(check: () => Promise<boolean>, found: () => void, options: IWatchOptions = {}) {
    this._check = check;
    this._found = found;
    this._minGap = (options.minGapSeconds ?? MIN_GAP_SECONDS) * 1000;
    window.addEventListener('focus', this._onWake);
    document.addEventListener('visibilitychange', this._onWake);
    this._timer = window.setInterval(
      () => void this.check(),
      (options.periodSeconds ?? RECHECK_SECONDS) * 1000
    );
    void this.check();
  }

  /** Whether the watch has stopped (the user was found to instruct, or it was disposed). */
  get isDisposed(): boolean {
    return this._timer === null;
  }

  /**
   * Ask now (one request at a time: a check under way is joined).
   *
   * @returns whether the user instructs an event
   */
  check(): Promise<boolean> {
    if (this.isDisposed) {
      return Promise.resolve(this._seen);
    }
    if (this._pending === null) {
      this._last = Date.now();
      this._pending = this._check()
        .catch(() => false)
        .then(yes => {
          this._pending = null;
          if (yes && !this.isDisposed) {
            this._seen = true;
            this.dispose();
            this._found();
          }
          return yes;
        });
    }
    return this._pending;
  }

  /** Stop asking. */
  dispose(): void {
    if (this._timer === null) {
      return;
    }
    window.clearInterval(this._timer);
    this._timer = null;
    window.removeEventListener('focus', this._onWake);
    document.removeEventListener('visibilitychange', this._onWake);
  }

  // an arrow function: the same listener object is added and removed
  private _onWake = (): void => {
    if (document.visibilityState !== 'hidden' && Date.now() - this._last >= this._minGap) {
      void this.check();
    }
  };

  private _check: () => Promise<boolean>;
  private _found: () => void;
  private _minGap: number;
  private _timer: number | null;
  private _pending: Promise<boolean> | null = null;
  private _last = 0;
  private _seen = false;
}
