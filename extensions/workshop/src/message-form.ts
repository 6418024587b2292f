/**
 * The instructor's message to all participants, written inside the event's section of the
 * *Workshops* panel (beside the participants it goes to) rather than in a modal dialog.
 */
import { actionButton as button } from '@continuum-hub/common';

/** The longest message (the hub's limit). */
export const MAX_MESSAGE = 2000;

/**
 * A form with the message's text, *Send* and *Cancel*; hidden until {@link open}. Its text
 * stays while the panel refreshes around it; it is cleared only once the hub took the message.
 */
export class MessageForm {
  /**
   * @param send - sends the text and shows a failure (which keeps the text and the form open)
   * @param changed - told when the form opens or closes
   */
  constructor(send: (text: string) => Promise<void>, changed: (open: boolean) => void) {
    this._send = send;
    this._changed = changed;
    this.node = document.createElement('form');
    this.node.className = 'jp-ContinuumWorkshop-compose';
    this.node.hidden = true;
    this.textarea = document.createElement('textarea');
    this.textarea.name = 'message';
    this.textarea.rows = 4;
    this.textarea.maxLength = MAX_MESSAGE;
    this.textarea.setAttribute('aria-label', 'Message to all participants');
    this.textarea.placeholder = 'Message to all participants';
    const submit = button('Send', 'jp-mod-styled jp-mod-accept', 'send', () => undefined);
    submit.type = 'submit';
    const cancel = button('Cancel', 'jp-mod-styled', 'cancel', () => this.close());
    const bar = document.createElement('div');
    bar.className = 'jp-ContinuumWorkshop-composeBar';
    bar.append(submit, cancel);
    this.node.append(this.textarea, bar);
    this.node.addEventListener('submit', event => {
      event.preventDefault();
      this._submitQuietly();
    });
    this.node.addEventListener('keydown', event => {
      if (event.key === 'Escape') {
        event.stopPropagation();
        this.close();
      } else if (event.key === 'Enter' && (event.ctrlKey || event.metaKey)) {
        event.preventDefault();
        this._submitQuietly();
      }
    });
  }

  /** Whether the form is shown. */
  get isOpen(): boolean {
    return !this.node.hidden;
  }

  /** Show the form (its text as left) and put the cursor in it. */
  open(): void {
    const was = this.isOpen;
    this.node.hidden = false;
    this.textarea.focus();
    if (!was) {
      this._changed(true);
    }
  }

  /** Hide the form; its text stays for the next {@link open}. */
  close(): void {
    if (this.isOpen) {
      this.node.hidden = true;
      this._changed(false);
    }
  }

  /**
   * Send the text if there is any; once sent, clear and close the form.
   *
   * @returns whether a message was sent
   */
  async submit(): Promise<boolean> {
    const text = this.textarea.value.trim();
    if (!text || this._sending) {
      return false;
    }
    this._sending = true;
    try {
      await this._send(text);
    } finally {
      this._sending = false;
    }
    this.textarea.value = '';
    this.close();
    return true;
  }

  // `send` shows its own failure (the panel's error line); the text stays for another try
  private _submitQuietly(): void {
    this.submit().catch(() => undefined);
  }

  /** The form (hidden while closed). */
  readonly node: HTMLFormElement;
  /** The message's text. */
  readonly textarea: HTMLTextAreaElement;

  private _send: (text: string) => Promise<void>;
  private _changed: (open: boolean) => void;
  private _sending = false;
}
