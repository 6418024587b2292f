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
   * Do an action on an event, then refresh.
   *
   * @param request - the event, the action and its argument
   * @returns the hub's answer
   */
  run(request: IActionRequest): Promise<IActionAnswer> {
    return this.act(() => this._send(request));
  }

  protected async load(): Promise<number> {
    const answer = await this._fetch();
    this._events = answer.events;
    return answer.refresh_seconds ?? DEFAULT_REFRESH_SECONDS;
  }

  private _fetch: () => Promise<IEventsAnswer>;
  private _send: (request: IActionRequest) => Promise<IActionAnswer>;
  private _events: IWorkshopEvent[] | null = null;
}
