import { Dialog, showDialog } from '@jupyterlab/apputils';
import { Widget } from '@lumino/widgets';

import { messagesList } from './messages-list';
import { IWorkshopEvent, IWorkshopMessage } from './tokens';

/** The longest message (the hub's limit). */
export const MAX_MESSAGE = 2000;

/**
 * The body of the message dialog: a text area whose text is the dialog's value.
 */
export class MessageBody extends Widget implements Dialog.IBodyWidget<string> {
  constructor() {
    super();
    this.addClass('jp-ContinuumWorkshop-compose');
    this.textarea = document.createElement('textarea');
    this.textarea.name = 'message';
    this.textarea.rows = 5;
    this.textarea.maxLength = MAX_MESSAGE;
    this.textarea.setAttribute('aria-label', 'Message to all participants');
    this.node.append(this.textarea);
  }

  getValue(): string {
    return this.textarea.value;
  }

  readonly textarea: HTMLTextAreaElement;
}

/**
 * Ask for a message to all participants of `ev`.
 *
 * @returns the text, or null when cancelled or empty
 */
export async function askMessage(ev: IWorkshopEvent): Promise<string | null> {
  const body = new MessageBody();
  const result = await showDialog({
    title: `Message to the participants of ${ev.title}`,
    body,
    focusNodeSelector: 'textarea',
    buttons: [Dialog.cancelButton(), Dialog.okButton({ label: 'Send' })]
  });
  const text = result.button.accept ? (result.value ?? '').trim() : '';
  return text ? text : null;
}

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
