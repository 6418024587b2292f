import { actionButton, errorMessage, formatBytes, tableWithHead } from '@continuum-hub/common';
import { Widget } from '@lumino/widgets';

import {
  AvailabilityFollower,
  availabilityTargets,
  copyText,
  defaultSite,
  enabledActions,
  mayUse,
  nearArguments,
  nearCommands,
  requestLabel,
  startNearUrl,
  startSite
} from './actions';
import { isQueryable, QueryModel } from './query-model';
import { QueryView } from './query-view';
import { ICatalogueAPI, IEntry, IUsableSites } from './tokens';

/**
 * What the entry view's buttons do in the application.
 */
export interface IEntryActions {
  /** Put `code` into a new cell below the current notebook's active cell (a new notebook
   * when none is open). */
  insertCode(code: string): Promise<void>;
  /** Copy `text` to the clipboard. */
  copy(text: string): void;
  /** Open the hub's spawn page near the data (a new tab). */
  startNear(url: string): void;
  /** Whether the application has the command `id` (another extension's). */
  hasCommand(id: string): boolean;
  /** Run the command `id` with `args`. */
  execute(id: string, args: { [key: string]: string }): Promise<void>;
}

/**
 * Where the hub is for this server and whose server it is (for *Start near the data*).
 */
export interface IHubPlace {
  prefix: string;
  user: string;
}

/** Metadata keys shown at the most. */
const MAX_METADATA = 30;

/**
 * One entry: its metadata, its replicas per site with the user's access to each, and the
 * actions *Insert code*, *Copy path/DID*, *Make available at site…*, *Start near the data*.
 */
export class EntryView extends Widget {
  constructor(
    private _api: ICatalogueAPI,
    private _actions: IEntryActions,
    private _usable: () => IUsableSites | null,
    private _hub: IHubPlace
  ) {
    super();
    this.addClass('jp-ContinuumCatalogue-entry');
    this.node.setAttribute('role', 'region');
    this.node.setAttribute('aria-label', 'Catalogue entry');
    this._follower = new AvailabilityFollower(_api);
    this._follower.changed.connect(() => this.render());
    this.hide();
  }

  /** The entry shown; null before one is opened. */
  get entry(): IEntry | null {
    return this._entry;
  }

  /** The site whose replica the code and the path are for. */
  get site(): string {
    return this._site;
  }

  /**
   * Show the entry `id` (its code for the default site: one holding data that the user may use).
   */
  async open(id: string): Promise<void> {
    this._follower.dispose();
    this._closeQuery();
    this._error = null;
    this.show();
    try {
      const entry = await this._api.entry(id);
      const site = defaultSite(entry, this._usable());
      this._entry =
        site && site !== this._codeSite(entry) ? await this._api.entry(id, site) : entry;
      this._site = site;
      if (isQueryable(this._entry)) {
        this._query = new QueryView(new QueryModel(this._api, this._entry), code =>
          this._run(this._actions.insertCode(code))
        );
      }
    } catch (error) {
      this._entry = null;
      this._error = errorMessage(error);
    }
    this.render();
  }

  /** The query form of a TAP table or service; null for other entries. */
  get query(): QueryView | null {
    return this._query;
  }

  /**
   * Choose the replica's site the code and the path are for (the code is asked again).
   */
  async choose(site: string): Promise<void> {
    if (!this._entry || site === this._site) {
      return;
    }
    this._site = site;
    try {
      this._entry = await this._api.entry(this._entry.id, site);
      this._error = null;
    } catch (error) {
      this._error = errorMessage(error);
    }
    this.render();
  }

  dispose(): void {
    this._follower.dispose();
    this._closeQuery();
    super.dispose();
  }

  render(): void {
    const entry = this._entry;
    const parts: HTMLElement[] = [];
    if (this._error) {
      const error = document.createElement('p');
      error.className = 'jp-ContinuumCatalogue-error';
      error.setAttribute('role', 'alert');
      error.textContent = this._error;
      parts.push(error);
    }
    if (entry) {
      const usable = this._usable();
      const title = document.createElement('h3');
      title.textContent = entry.title || entry.identifier;
      parts.push(title, this._facts(entry));
      if (entry.description) {
        const text = document.createElement('p');
        text.className = 'jp-ContinuumCatalogue-description';
        text.textContent = entry.description;
        parts.push(text);
      }
      if (entry.replicas.length > 0) {
        parts.push(this._replicas(entry, usable));
      }
      parts.push(this._buttons(entry, usable));
      if (this._query) {
        parts.push(this._query.node);
      }
      const state = document.createElement('p');
      state.className = 'jp-ContinuumCatalogue-request';
      state.setAttribute('role', 'status');
      const request = this._follower.request;
      state.textContent = this._follower.error ?? (request ? requestLabel(request) : '');
      if (request) {
        state.dataset.state = request.state;
      }
      parts.push(state, this._metadata(entry));
    }
    this.node.replaceChildren(...parts);
  }

  private _codeSite(entry: IEntry): string {
    return entry.replicas[0]?.site ?? '';
  }

  private _facts(entry: IEntry): HTMLElement {
    const list = document.createElement('dl');
    list.className = 'jp-ContinuumCatalogue-facts';
    const time = entry.time_start ? `${entry.time_start} – ${entry.time_end ?? ''}` : '';
    const facts: [string, string][] = [
      ['Id', entry.id],
      ['Kind', [entry.kind, entry.format].filter(Boolean).join(', ')],
      ['VO', entry.vo ? `${entry.vo} (${entry.visibility})` : entry.visibility],
      ['Size', formatBytes(entry.size)],
      ['Time', time]
    ];
    for (const [name, value] of facts.filter(([, v]) => v)) {
      const term = document.createElement('dt');
      term.textContent = name;
      const detail = document.createElement('dd');
      detail.textContent = value;
      detail.dataset.fact = name.toLowerCase();
      list.append(term, detail);
    }
    return list;
  }

  private _replicas(entry: IEntry, usable: IUsableSites | null): HTMLElement {
    const table = tableWithHead('jp-ContinuumCatalogue-replicas', [
      'Use',
      'Site',
      'Where',
      'State',
      'Size',
      'Your access'
    ]);
    table.setAttribute('aria-label', 'Replicas');
    for (const replica of entry.replicas) {
      const row = table.tBodies[0].insertRow();
      row.dataset.site = replica.site;
      const choose = document.createElement('input');
      choose.type = 'radio';
      choose.name = `jp-ContinuumCatalogue-site-${this.id}`;
      choose.checked = replica.site === this._site;
      choose.setAttribute('aria-label', `Use the replica at ${replica.site || replica.location}`);
      choose.addEventListener('change', () => void this.choose(replica.site));
      row.insertCell().append(choose);
      const access = mayUse(replica.site, usable);
      const cells: [string, string][] = [
        ['site', replica.site || '–'],
        ['location', replica.path ? `${replica.location}: ${replica.path}` : replica.location],
        ['state', replica.state],
        ['size', formatBytes(replica.size)],
        ['access', access === null ? 'unknown' : access ? 'you may use it' : 'not for you']
      ];
      for (const [field, text] of cells) {
        const cell = row.insertCell();
        cell.dataset.field = field;
        cell.textContent = text;
      }
    }
    return table;
  }

  private _buttons(entry: IEntry, usable: IUsableSites | null): HTMLElement {
    const enabled = enabledActions(entry, usable);
    const bar = document.createElement('div');
    bar.className = 'jp-ContinuumCatalogue-actions';
    const insert = actionButton('Insert code', 'jp-mod-styled jp-mod-accept', 'insert-code', () =>
      this._run(this._actions.insertCode(entry.access.code ?? ''))
    );
    insert.disabled = !enabled.insert;
    insert.title = entry.access.code ?? 'This source has no code for this entry';
    const copy = actionButton('Copy path/DID', 'jp-mod-styled', 'copy', () =>
      this._actions.copy(copyText(entry, this._site))
    );
    copy.disabled = !enabled.copy;
    const near = startSite(entry, usable);
    const start = actionButton('Start near the data', 'jp-mod-styled', 'start-near', () => {
      if (near) {
        this._actions.startNear(startNearUrl(this._hub.prefix, this._hub.user, near, entry));
      }
    });
    start.disabled = !enabled.startNear;
    start.title = near
      ? `A new server at ${near}, where the data are`
      : 'No replica at a site you may use';
    bar.append(insert, copy, start);
    for (const command of nearCommands(id => this._actions.hasCommand(id))) {
      const button = actionButton(command.label, 'jp-mod-styled', command.action, () => {
        if (near) {
          this._run(this._actions.execute(command.id, nearArguments(near)));
        }
      });
      button.disabled = !enabled.startNear;
      button.title = near ? command.title(near) : 'No replica at a site you may use';
      bar.append(button);
    }
    const targets = availabilityTargets(entry, usable);
    if (enabled.makeAvailable) {
      const label = document.createElement('label');
      label.textContent = 'Make available at ';
      const picker = document.createElement('select');
      picker.name = 'make-available-site';
      picker.append(...targets.map(site => new Option(site, site)));
      label.append(picker);
      const ask = actionButton('Make available', 'jp-mod-styled', 'make-available', () =>
        this._run(this._follower.start(entry.id, picker.value))
      );
      ask.disabled = this._follower.following;
      bar.append(label, ask);
    }
    return bar;
  }

  private _metadata(entry: IEntry): HTMLElement {
    const details = document.createElement('details');
    const summary = document.createElement('summary');
    summary.textContent = 'Metadata';
    const table = tableWithHead('jp-ContinuumCatalogue-metadata', ['Key', 'Value']);
    for (const [key, value] of Object.entries(entry.metadata ?? {}).slice(0, MAX_METADATA)) {
      const row = table.tBodies[0].insertRow();
      row.insertCell().textContent = key;
      row.insertCell().textContent = typeof value === 'string' ? value : JSON.stringify(value);
    }
    details.append(summary, table);
    return details;
  }

  private _run(action: Promise<void>): void {
    action.then(
      () => this.render(),
      error => {
        this._error = errorMessage(error);
        this.render();
      }
    );
  }

  private _closeQuery(): void {
    this._query?.dispose();
    this._query = null;
  }

  private _entry: IEntry | null = null;
  private _query: QueryView | null = null;
  private _site = '';
  private _error: string | null = null;
  private _follower: AvailabilityFollower;
}
