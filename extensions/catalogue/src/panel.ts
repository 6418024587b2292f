import { Panel, Widget } from '@lumino/widgets';

import { EntryView, IEntryActions, IHubPlace } from './entry-view';
import { FACET_TITLES, facetValues, sourceState } from './format';
import { ResultsList } from './results-list';
import { SearchModel } from './search-model';
import { FACETS, ICatalogueAPI, IUsableSites } from './tokens';

/**
 * The search box, the sources' status line and the facet filters.
 */
export class SearchHeader extends Widget {
  constructor(private _model: SearchModel) {
    super();
    this.addClass('jp-ContinuumCatalogue-header');
    const heading = document.createElement('h2');
    heading.textContent = 'Catalogue';
    const label = document.createElement('label');
    label.className = 'jp-ContinuumCatalogue-searchLabel';
    label.textContent = 'Search datasets, tables and software';
    this.input = document.createElement('input');
    this.input.type = 'search';
    this.input.name = 'q';
    this.input.className = 'jp-mod-styled jp-ContinuumCatalogue-search';
    this.input.placeholder = 'e.g. radio beta, root 6.32 gpu';
    this.input.autocomplete = 'off';
    label.append(this.input);
    this.input.addEventListener('input', () => this._model.setText(this.input.value));
    this.input.addEventListener('keydown', event => {
      if (event.key === 'Enter') {
        event.preventDefault();
        void this._model.search();
      }
    });
    this._status = document.createElement('p');
    this._status.className = 'jp-ContinuumCatalogue-sources';
    this._status.setAttribute('role', 'status');
    this._error = document.createElement('p');
    this._error.className = 'jp-ContinuumCatalogue-error';
    this._error.setAttribute('role', 'alert');
    this._facets = document.createElement('div');
    this._facets.className = 'jp-ContinuumCatalogue-facets';
    this._count = document.createElement('p');
    this._count.className = 'jp-ContinuumCatalogue-count';
    this._count.setAttribute('aria-live', 'polite');
    this.node.append(heading, label, this._status, this._error, this._facets, this._count);
    this._model.changed.connect(() => this.render());
    this.render();
  }

  /** The search box. */
  readonly input: HTMLInputElement;

  render(): void {
    const model = this._model;
    this._status.replaceChildren(
      ...model.sources.map(source => {
        const item = document.createElement('span');
        item.dataset.source = source.name;
        item.dataset.ok = String(source.ok);
        item.textContent = sourceState(source);
        return item;
      })
    );
    this._error.textContent = model.error ?? '';
    this._error.hidden = model.error === null;
    this._count.textContent = model.searching
      ? 'Searching…'
      : model.answered
        ? `${model.total} result${model.total === 1 ? '' : 's'}`
        : 'Type to search the catalogues.';
    const selected = model.selected();
    const groups: HTMLElement[] = [];
    for (const facet of FACETS) {
      const values = facetValues(model.facets[facet], selected[facet] ?? []);
      if (values.length === 0) {
        continue;
      }
      const group = document.createElement('fieldset');
      group.dataset.facet = facet;
      const legend = document.createElement('legend');
      legend.textContent = FACET_TITLES[facet];
      group.append(legend);
      for (const { value, count, selected: on } of values) {
        const label = document.createElement('label');
        const box = document.createElement('input');
        box.type = 'checkbox';
        box.value = value;
        box.checked = on;
        box.dataset.facet = facet;
        box.addEventListener('change', () => void model.toggle(facet, value));
        label.append(box, ` ${value} (${count})`);
        group.append(label);
      }
      groups.push(group);
    }
    this._facets.replaceChildren(...groups);
  }

  private _status: HTMLParagraphElement;
  private _error: HTMLParagraphElement;
  private _facets: HTMLDivElement;
  private _count: HTMLParagraphElement;
}

/**
 * The *Catalogue* side panel: one search box, facet filters with counts, the sources' states,
 * the results as a windowed list, and the entry view with its actions.
 */
export class CataloguePanel extends Panel {
  /**
   * @param model - the search
   * @param api - the catalogue routes (the entry view asks them)
   * @param actions - what the entry view's buttons do
   * @param hub - the hub's prefix and the user (for *Start near the data*)
   */
  constructor(model: SearchModel, api: ICatalogueAPI, actions: IEntryActions, hub: IHubPlace) {
    super();
    this.addClass('jp-ContinuumCatalogue-panel');
    this.title.caption = 'Catalogue';
    this._model = model;
    this.header = new SearchHeader(model);
    this.view = new EntryView(api, actions, () => this._usable, hub);
    this.results = new ResultsList(model, index => {
      const entry = model.entryAt(index);
      if (entry) {
        void this.view.open(entry.id);
      }
    });
    this.addWidget(this.header);
    this.addWidget(this.results);
    this.addWidget(this.view);
    this.header.input.addEventListener('keydown', event => {
      if (event.key === 'ArrowDown') {
        event.preventDefault();
        this.results.node.focus();
      }
    });
  }

  readonly header: SearchHeader;
  readonly results: ResultsList;
  readonly view: EntryView;

  /** The search. */
  get model(): SearchModel {
    return this._model;
  }

  /**
   * The sites the user may use (for the replicas' access column and the actions).
   */
  set usable(value: IUsableSites | null) {
    this._usable = value;
    this.view.render();
  }

  /**
   * Put the cursor in the search box.
   */
  focusSearch(): void {
    this.header.input.focus();
  }

  dispose(): void {
    this._model.dispose();
    super.dispose();
  }

  private _model: SearchModel;
  private _usable: IUsableSites | null = null;
}
