import { DEFAULT_REFRESH_SECONDS, PollingModel } from '@continuum-hub/common';

import { eventAction, fetchEvents } from './request';
import { IActionAnswer, IActionRequest, IEventsAnswer, IWorkshopEvent } from './tokens';

/**
 * The instructor's panel's model: the events the user instructs with their participants'
 * states, asked again every `refresh_seconds` (the server's setting) and after each action.
 */
export class InstructorModel extends PollingModel {
  /**
   * @param fetch - where the events come from
   * @param send - what does an action
   */
  constructor(
    fetch: () => Promise<IEventsAnswer> = fetchEvents,
    send: (request: IActionRequest) => Promise<IActionAnswer> = eventAction
  ) {
    super();
    this._fetch = fetch;
    this._send = send;
  }

  /** The events; null until the first answer. */
  get events(): readonly IWorkshopEvent[] | null {
    return this._events;
  }

  /**
   * Whether the instructor is writing in the panel: the periodic refresh then keeps the
   * events as they are (an action still refreshes); the end of the writing catches up at once
   * on a refresh it held back.
   */
  get editing(): boolean {
    return this._editing;
  }

  set editing(value: boolean) {
    const ended = this._editing && !value;
    this._editing = value;
    if (ended && this._held) {
      void this.refresh();
    }
  }

  /**
   * Do an action on an event, then refresh.
   *
   * @param request - the event, the action and its argument
   * @returns the hub's answer
   */
  run(request: IActionRequest): Promise<IActionAnswer> {
    return this.act(async () => {
      try {
        return await this._send(request);
      } finally {
        this._acted = true;
      }
    });
  }

  protected async load(): Promise<number> {
    const paused = this._editing && !this._acted && this._events !== null;
    this._acted = false;
    this._held = paused;
    if (!paused) {
      const answer = await this._fetch();
      this._events = answer.events;
      this._seconds = answer.refresh_seconds ?? DEFAULT_REFRESH_SECONDS;
    }
    return this._seconds;
  }

  private _fetch: () => Promise<IEventsAnswer>;
  private _send: (request: IActionRequest) => Promise<IActionAnswer>;
  private _events: IWorkshopEvent[] | null = null;
  private _seconds = DEFAULT_REFRESH_SECONDS;
  private _editing = false;
  private _acted = false;
  private _held = false;
}
