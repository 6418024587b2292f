import { Widget } from '@lumino/widgets';

import { resultLine } from './format';
import { SearchModel, visibleWindow } from './search-model';

/**
 * Height of one result row (px); the stylesheet gives rows exactly this height.
 */
export const ROW_HEIGHT = 44;

/**
 * The results as a windowed list: a spacer as tall as all rows, and only the rows in view
 * rendered (pages are loaded from the service as they come into view).  Keyboard: arrows move,
 * Home/End jump, Enter opens.
 */
export class ResultsList extends Widget {
  /**
   * @param model - the search
   * @param open - what opening a result does
   */
  constructor(
    private _model: SearchModel,
    private _open: (index: number) => void
  ) {
    super();
    this.addClass('jp-ContinuumCatalogue-results');
    this.node.setAttribute('role', 'listbox');
    this.node.setAttribute('aria-label', 'Search results');
    this.node.tabIndex = 0;
    this._spacer = document.createElement('div');
    this._spacer.className = 'jp-ContinuumCatalogue-spacer';
    this.node.append(this._spacer);
    this.node.addEventListener('scroll', () => this.render());
    this.node.addEventListener('keydown', event => this._key(event));
    this._model.changed.connect(() => this.render());
  }

  /** The row the keyboard is on (-1: none). */
  get active(): number {
    return this._active;
  }

  /**
   * Render the rows in view (and ask for their pages).
   */
  render(): void {
    const total = this._model.answered ? this._model.total : 0;
    this._spacer.style.height = `${total * ROW_HEIGHT}px`;
    if (this._active >= total) {
      this._active = total - 1;
    }
    const { start, end } = visibleWindow(
      this.node.scrollTop,
      this.node.clientHeight || 400,
      ROW_HEIGHT,
      total
    );
    void this._model.ensureRange(start, end);
    const rows: HTMLElement[] = [];
    for (let index = start; index < end; index++) {
      rows.push(this._row(index));
    }
    this._spacer.replaceChildren(...rows);
    if (this._active >= 0) {
      this.node.setAttribute('aria-activedescendant', `jp-ContinuumCatalogue-row-${this._active}`);
    } else {
      this.node.removeAttribute('aria-activedescendant');
    }
  }

  private _row(index: number): HTMLElement {
    const row = document.createElement('div');
    row.className = 'jp-ContinuumCatalogue-row';
    row.id = `jp-ContinuumCatalogue-row-${index}`;
    row.setAttribute('role', 'option');
    row.setAttribute('aria-selected', String(index === this._active));
    row.style.top = `${index * ROW_HEIGHT}px`;
    const entry = this._model.entryAt(index);
    if (!entry) {
      row.textContent = 'Loading…';
      row.classList.add('jp-mod-loading');
      return row;
    }
    row.dataset.entryId = entry.id;
    const title = document.createElement('div');
    title.className = 'jp-ContinuumCatalogue-rowTitle';
    title.textContent = entry.title || entry.identifier;
    title.title = entry.id;
    const line = document.createElement('div');
    line.className = 'jp-ContinuumCatalogue-rowLine';
    line.textContent = resultLine(entry);
    row.append(title, line);
    row.addEventListener('click', () => {
      this._active = index;
      this._open(index);
      this.render();
    });
    return row;
  }

  private _key(event: KeyboardEvent): void {
    const total = this._model.answered ? this._model.total : 0;
    const moves: Record<string, number> = {
      ArrowDown: this._active + 1,
      ArrowUp: this._active - 1,
      Home: 0,
      End: total - 1,
      PageDown: this._active + 10,
      PageUp: this._active - 10
    };
    if (event.key === 'Enter' && this._active >= 0) {
      event.preventDefault();
      this._open(this._active);
      return;
    }
    if (!(event.key in moves) || total === 0) {
      return;
    }
    event.preventDefault();
    this._active = Math.max(0, Math.min(total - 1, moves[event.key]));
    const top = this._active * ROW_HEIGHT;
    if (top < this.node.scrollTop) {
      this.node.scrollTop = top;
    } else if (top + ROW_HEIGHT > this.node.scrollTop + this.node.clientHeight) {
      this.node.scrollTop = top + ROW_HEIGHT - this.node.clientHeight;
    }
    this.render();
  }

  private _active = -1;
  private _spacer: HTMLDivElement;
}
