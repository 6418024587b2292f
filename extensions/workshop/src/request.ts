import { postJSON, requestAPI } from '@continuum-hub/common';

import { IActionAnswer, IActionRequest, IEventsAnswer, IMessagesAnswer } from './tokens';

/** The routes of the `continuum_lab` server extension, below `{baseUrl}continuum/`. */
export const MESSAGES_ROUTE = 'workshop/messages';
export const EVENTS_ROUTE = 'workshop/events';
export const ACT_ROUTE = 'workshop/act';

/**
 * The instructors' messages of the user's running events newer than message `after`.
 *
 * @param after - the id of the newest message already held (0: all)
 */
export function fetchMessages(after: number): Promise<IMessagesAnswer> {
  return requestAPI<IMessagesAnswer>(`${MESSAGES_ROUTE}?after=${after}`);
}

/** The events the user instructs, with their participants' states. */
export function fetchEvents(): Promise<IEventsAnswer> {
  return requestAPI<IEventsAnswer>(EVENTS_ROUTE);
}

/**
 * Do an instructor's action on an event (the hub checks that the user instructs it).
 *
 * @param request - the event, the action and its argument
 */
export function eventAction(request: IActionRequest): Promise<IActionAnswer> {
  return requestAPI<IActionAnswer>(ACT_ROUTE, postJSON(request));
}
