import { showRelativeTime } from '@continuum-hub/common';

import { IWorkshopMessage } from './tokens';

/** The longest text of a pop-up (JupyterLab's toasts cut at 140 characters). */
export const POPUP_LENGTH = 140;

/**
 * A message as one pop-up line: `Intro to Dask: Open notebook 2`, cut to {@link POPUP_LENGTH}
 * characters with an ellipsis (the whole text is in the messages list).
 *
 * @param message - the message
 */
export function popupText(message: IWorkshopMessage): string {
  const line = `${message.title}: ${message.text.replace(/\s+/g, ' ')}`;
  return line.length <= POPUP_LENGTH ? line : `${line.slice(0, POPUP_LENGTH - 1)}…`;
}

/**
 * The messages as a list, newest first: the event, who sent it and when, then the whole text.
 *
 * @param messages - the messages (any order)
 * @param now - the present, epoch milliseconds
 */
export function messagesList(
  messages: readonly IWorkshopMessage[],
  now: number = Date.now()
): HTMLElement {
  if (messages.length === 0) {
    const none = document.createElement('p');
    none.className = 'jp-ContinuumWorkshop-empty';
    none.textContent = 'No messages from your workshops’ instructors yet.';
    return none;
  }
  const list = document.createElement('ol');
  list.className = 'jp-ContinuumWorkshop-messages';
  for (const message of [...messages].sort((a, b) => b.id - a.id)) {
    const item = document.createElement('li');
    item.dataset.message = String(message.id);
    const head = document.createElement('div');
    head.className = 'jp-ContinuumWorkshop-messageHead';
    const when = document.createElement('time');
    showRelativeTime(when, message.sent_at, '', now);
    head.append(`${message.title} · ${message.author} · `, when);
    const text = document.createElement('p');
    text.textContent = message.text;
    item.append(head, text);
    list.append(item);
  }
  return list;
}
