import { Dialog, showDialog } from '@jupyterlab/apputils';
import { Widget } from '@lumino/widgets';

import { messagesList } from './messages-list';
import { IWorkshopEvent, IWorkshopMessage } from './tokens';

/**
 * Ask before stopping every server of `ev` or ending it.
 *
 * @param ev - the event
 * @param action - `stop` or `end`
 * @returns whether to go on
 */
export async function confirmAction(ev: IWorkshopEvent, action: 'stop' | 'end'): Promise<boolean> {
  const ending = action === 'end';
  const result = await showDialog({
    title: ending ? `End ${ev.title} now?` : `Stop every server of ${ev.title}?`,
    body: ending
      ? 'Every participant’s server stops, the shares you opened are revoked, the reservation ' +
        'is released and nobody can start again. The attendance CSV downloads.'
      : `${ev.participants.length} participants’ servers stop; unsaved work in them is lost.`,
    buttons: [
      Dialog.cancelButton(),
      Dialog.warnButton({ label: ending ? 'End event' : 'Stop all' })
    ]
  });
  return result.button.accept;
}

/**
 * Show every message received, newest first.
 *
 * @param messages - the messages
 */
export async function showMessages(messages: readonly IWorkshopMessage[]): Promise<void> {
  const body = new Widget({ node: messagesList(messages) });
  await showDialog({
    title: 'Workshop messages',
    body,
    buttons: [Dialog.okButton({ label: 'Close' })]
  });
}
