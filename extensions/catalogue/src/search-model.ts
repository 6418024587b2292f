import { errorMessage } from '@continuum-hub/common';
import { ISignal, Signal } from '@lumino/signaling';

import { catalogueAPI } from './request';
import { Facet, FACETS, ICatalogueAPI, IEntry, ISearchQuery, ISourceStatus } from './tokens';

/**
 * Entries asked per request, the wait after the last keystroke before searching, and the
 * deepest offset the service pages to.
 */
export const PAGE_SIZE = 50;
export const DEBOUNCE_MS = 300;
export const MAX_OFFSET = 10_000;

/**
 * The rows of a windowed list worth rendering: those in view plus `overscan` on each side.
 *
 * @param scrollTop - the list's scroll position (px)
 * @param height - the list's visible height (px)
 * @param rowHeight - one row's height (px)
 * @param count - rows in all
 * @param overscan - extra rows above and below
 * @returns `[start, end)` row indexes
 */
export function visibleWindow(
  scrollTop: number,
  height: number,
  rowHeight: number,
  count: number,
  overscan = 5
): { start: number; end: number } {
  const first = Math.floor(Math.max(0, scrollTop) / rowHeight);
  const shown = Math.ceil(Math.max(0, height) / rowHeight) + 1;
  const start = Math.max(0, Math.min(count, first - overscan));
  const end = Math.max(start, Math.min(count, first + shown + overscan));
  return { start, end };
}

/**
 * The search of the *Catalogue* panel: its text (debounced), the selected facet values, the
 * results loaded page by page as the list scrolls, the facet counts and the sources' states.
 *
 * Answers to an older search are dropped: only the latest text and filters count.
 */
export class SearchModel {
  /**
   * @param api - the server extension's catalogue routes (a seam for tests)
   * @param debounceMs - the wait after the last keystroke
   */
  constructor(api: ICatalogueAPI = catalogueAPI, debounceMs = DEBOUNCE_MS) {
    this._api = api;
    this._debounceMs = debounceMs;
  }

  /** Emitted when the results, facets, sources or error change. */
  get changed(): ISignal<this, void> {
    return this._changed;
  }

  get text(): string {
    return this._text;
  }

  /** Matches in all (what the list scrolls over); 0 before the first answer. */
  get total(): number {
    return Math.min(this._total, MAX_OFFSET + PAGE_SIZE);
  }

  /** Whether an answer has come for the current search. */
  get answered(): boolean {
    return this._answered;
  }

  get searching(): boolean {
    return this._pending.size > 0;
  }

  /** facet → value → count of the current search. */
  get facets(): Partial<Record<Facet, Record<string, number>>> {
    return this._facets;
  }

  get sources(): ISourceStatus[] {
    return this._sources;
  }

  /** Why the last search failed; null when it worked. */
  get error(): string | null {
    return this._error;
  }

  /**
   * Change the text; the search runs after {@link DEBOUNCE_MS} without another change.
   */
  setText(text: string): void {
    this._text = text;
    if (this._timer !== null) {
      window.clearTimeout(this._timer);
    }
    this._timer = window.setTimeout(() => {
      this._timer = null;
      void this.search();
    }, this._debounceMs);
  }

  /**
   * Whether `value` of `facet` is selected.
   */
  isSelected(facet: Facet, value: string): boolean {
    return this._filters.get(facet)?.has(value) ?? false;
  }

  /**
   * The selected values of each facet.
   */
  selected(): Partial<Record<Facet, string[]>> {
    const out: Partial<Record<Facet, string[]>> = {};
    for (const facet of FACETS) {
      const values = this._filters.get(facet);
      if (values && values.size > 0) {
        out[facet] = [...values];
      }
    }
    return out;
  }

  /**
   * Select or deselect a facet value and search again (values of one facet are alternatives,
   * facets narrow each other).
   */
  async toggle(facet: Facet, value: string): Promise<void> {
    const values = this._filters.get(facet) ?? new Set<string>();
    if (!values.delete(value)) {
      values.add(value);
    }
    this._filters.set(facet, values);
    await this.search();
  }

  /**
   * Deselect every facet value and search again.
   */
  async clearFilters(): Promise<void> {
    this._filters.clear();
    await this.search();
  }

  /**
   * Search now with the current text and filters: the first page, with facet counts.
   */
  async search(): Promise<void> {
    if (this._timer !== null) {
      window.clearTimeout(this._timer);
      this._timer = null;
    }
    this._generation += 1;
    this._pages.clear();
    this._pending.clear();
    this._answered = false;
    await this._load(0, true);
  }

  /**
   * The entry at `index`, if its page is loaded.
   */
  entryAt(index: number): IEntry | undefined {
    return this._pages.get(Math.floor(index / PAGE_SIZE))?.[index % PAGE_SIZE];
  }

  /**
   * Load the pages holding rows `[start, end)` that are not loaded or asked for yet.
   */
  async ensureRange(start: number, end: number): Promise<void> {
    if (!this._answered) {
      return;
    }
    const last = Math.min(end, this.total) - 1;
    const loads: Promise<void>[] = [];
    for (let page = Math.floor(start / PAGE_SIZE); page * PAGE_SIZE <= last; page++) {
      if (!this._pages.has(page) && !this._pending.has(page) && page * PAGE_SIZE <= MAX_OFFSET) {
        loads.push(this._load(page, false));
      }
    }
    await Promise.all(loads);
  }

  /**
   * Stop the pending debounce; answers still under way are dropped.
   */
  dispose(): void {
    if (this._timer !== null) {
      window.clearTimeout(this._timer);
    }
    this._generation += 1;
    Signal.clearData(this);
  }

  private async _load(page: number, withFacets: boolean): Promise<void> {
    const generation = this._generation;
    const query: ISearchQuery = {
      q: this._text.trim(),
      filters: this.selected(),
      offset: page * PAGE_SIZE,
      limit: PAGE_SIZE,
      facets: withFacets
    };
    this._pending.add(page);
    this._changed.emit();
    try {
      const answer = await this._api.search(query);
      if (generation !== this._generation) {
        return;
      }
      this._pages.set(page, answer.entries);
      if (withFacets) {
        this._facets = answer.facets ?? {};
        this._sources = answer.sources ?? [];
        this._total = answer.total ?? answer.entries.length;
        this._answered = true;
      }
      this._error = null;
    } catch (error) {
      if (generation !== this._generation) {
        return;
      }
      this._error = errorMessage(error);
      if (withFacets) {
        this._total = 0;
        this._answered = true;
      }
    } finally {
      if (generation === this._generation) {
        this._pending.delete(page);
        this._changed.emit();
      }
    }
  }

  private _api: ICatalogueAPI;
  private _debounceMs: number;
  private _text = '';
  private _filters = new Map<Facet, Set<string>>();
  private _pages = new Map<number, IEntry[]>();
  private _pending = new Set<number>();
  private _total = 0;
  private _answered = false;
  private _facets: Partial<Record<Facet, Record<string, number>>> = {};
  private _sources: ISourceStatus[] = [];
  private _error: string | null = null;
  private _generation = 0;
  private _timer: number | null = null;
  private _changed = new Signal<this, void>(this);
}
