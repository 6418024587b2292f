import { Widget } from '@lumino/widgets';

import { listNote } from './dom';
import { errorMessage } from './polling';

/**
 * A side panel that shows a list from the server: a heading, a bar of buttons, the last error
 * and what stands in for an empty list; subclasses add their table and {@link render} it.
 * The panel is a CSS size container (`jp-ContinuumList`, style/list-panel.css): its tables are
 * tables when it is wide and one card per row in a narrow side bar, each value after its
 * cell's `data-label` (the column's title).
 */
export abstract class ListPanel extends Widget {
  /**
   * @param prefix - the class prefix: `<prefix>-panel`, `-bar`, `-error`, `-empty`
   * @param title - the heading and the tab's caption
   */
  constructor(prefix: string, title: string) {
    super();
    this.addClass('jp-ContinuumList');
    this.addClass(`${prefix}-panel`);
    this.title.caption = title;
    const heading = document.createElement('h2');
    heading.textContent = title;
    this.bar = document.createElement('div');
    this.bar.className = `${prefix}-bar`;
    this.errorNode = document.createElement('p');
    this.errorNode.className = `${prefix}-error`;
    this.errorNode.setAttribute('role', 'alert');
    this.emptyNode = document.createElement('p');
    this.emptyNode.className = `${prefix}-empty`;
    this.node.append(heading, this.bar, this.errorNode, this.emptyNode);
  }

  /**
   * Write the model's state into the node.
   */
  abstract render(): void;

  /**
   * Show the server's error (else the last action's) and the note for the list.
   *
   * @param items - the list, null until the first answer
   * @param error - the model's error
   * @param asking - the note before the first answer
   * @param none - the note for an empty list
   */
  protected showState(
    items: readonly unknown[] | null,
    error: string | null,
    asking: string,
    none: string
  ): void {
    const problem = error ?? this.actionError;
    this.errorNode.textContent = problem ?? '';
    this.errorNode.hidden = problem === null;
    this.emptyNode.textContent = listNote(items, error, asking, none);
  }

  /**
   * Follow a button's action: its failure is shown until the next action.
   *
   * @param action - the action under way
   */
  protected runAction(action: Promise<void>): void {
    this.actionError = null;
    action.then(
      () => this.render(),
      error => {
        this.actionError = errorMessage(error);
        this.render();
      }
    );
  }

  /** The bar above the list, for the panel's buttons. */
  protected readonly bar: HTMLDivElement;
  /** The line showing the error. */
  protected readonly errorNode: HTMLParagraphElement;
  /** The line standing in for an empty list. */
  protected readonly emptyNode: HTMLParagraphElement;
  /** Why the last action failed; null when it worked. */
  protected actionError: string | null = null;
}
