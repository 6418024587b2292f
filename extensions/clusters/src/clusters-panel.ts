import {
  actionButton as button,
  ListPanel,
  showRelativeTime,
  startedAt,
  tableWithHead
} from '@continuum-hub/common';

import { connectCode, displayName } from './cluster-form';
import { formatResources, parseCount } from './format';
import { IClusterInfo, IClustersModel } from './tokens';

/**
 * What the panel's buttons do (the plugin asks for confirmation and reports failures).
 */
export interface IClustersPanelActions {
  /** Open the *New Dask cluster* dialog (and start the cluster it describes). */
  create(): Promise<void>;
  /** Ask for `count` workers. */
  scale(name: string, count: number): Promise<void>;
  /** Shut the cluster down (after confirmation). */
  stop(name: string): Promise<void>;
}

/**
 * The elements of one cluster's row, kept across refreshes so that a count being typed survives.
 */
interface IRow {
  node: HTMLTableRowElement;
  cells: Record<string, HTMLTableCellElement>;
  count: HTMLInputElement;
  dashboard: HTMLAnchorElement;
  /** The readable name (the gateway's id on hover). */
  label: HTMLSpanElement;
}

const COLUMNS: [string, string][] = [
  ['name', 'Cluster'],
  ['status', 'Status'],
  ['workers', 'Workers'],
  ['resources', 'Cores · memory'],
  ['age', 'Started'],
  ['actions', '']
];

/**
 * The side panel: every Dask Gateway cluster of the user, with scale, dashboard and shutdown.
 */
export class ClustersPanel extends ListPanel {
  /**
   * @param model - the clusters model shown
   * @param actions - what the buttons do
   */
  constructor(model: IClustersModel, actions: IClustersPanelActions) {
    super('jp-ContinuumClusters', 'Dask clusters');
    this._model = model;
    this._actions = actions;
    this.bar.append(
      button('New cluster', 'jp-mod-styled jp-mod-accept', 'create', () =>
        this.runAction(actions.create())
      ),
      button('Refresh', 'jp-mod-styled', 'refresh', () => void model.refresh())
    );
    const table = tableWithHead(
      'jp-ContinuumClusters-table',
      COLUMNS.map(([, label]) => label)
    );
    this._body = table.tBodies[0];
    this.node.append(table);
    model.changed.connect(this.render, this);
    this.render();
  }

  /**
   * Write the model's state into the node (rows are updated in place, keyed by name).
   */
  render(): void {
    const clusters = this._model.clusters;
    this.showState(
      clusters,
      this._model.error,
      'Asking the Dask Gateway…',
      'No clusters. Start one here or with dask_gateway.GatewayCluster() in a notebook.'
    );
    const seen = new Set<string>();
    for (const cluster of clusters ?? []) {
      seen.add(cluster.name);
      let row = this._rows.get(cluster.name);
      if (!row) {
        row = this._newRow(cluster.name);
        this._rows.set(cluster.name, row);
      }
      this._body.append(row.node); // keeps the server's order
      fill(row, cluster);
    }
    for (const [name, row] of this._rows) {
      if (!seen.has(name)) {
        row.node.remove();
        this._rows.delete(name);
      }
    }
  }

  private _newRow(name: string): IRow {
    const node = document.createElement('tr');
    node.dataset.cluster = name;
    const cells: Record<string, HTMLTableCellElement> = {};
    for (const [key, title] of COLUMNS) {
      const cell = node.insertCell();
      cell.dataset.field = key;
      cell.dataset.label = title; // the card's label when the panel is narrow
      cells[key] = cell;
    }
    const count = document.createElement('input');
    count.type = 'number';
    count.min = '0';
    count.step = '1';
    count.className = 'jp-ContinuumClusters-count';
    count.setAttribute('aria-label', 'Workers wanted');
    const scale = button('Scale', 'jp-mod-styled', 'scale', () => {
      const wanted = parseCount(count.value);
      if (typeof wanted === 'string') {
        this.actionError = wanted;
        this.render();
        return;
      }
      this.runAction(this._actions.scale(name, wanted));
    });
    const dashboard = document.createElement('a');
    dashboard.textContent = 'Dashboard';
    dashboard.target = '_blank';
    dashboard.rel = 'noopener noreferrer';
    dashboard.dataset.action = 'dashboard';
    const stop = button('Shut down', 'jp-mod-styled jp-mod-warn', 'stop', () =>
      this.runAction(this._actions.stop(name))
    );
    cells.actions.append(count, scale, dashboard, stop);
    const label = document.createElement('span');
    label.className = 'jp-ContinuumClusters-name';
    label.title = name;
    const copy = button('Copy code', 'jp-mod-styled jp-ContinuumClusters-copy', 'copy', () =>
      this.runAction(navigator.clipboard.writeText(connectCode(name)))
    );
    copy.title = `Copy the code that connects to cluster ${name}`;
    cells.name.append(label, copy);
    return { node, cells, count, dashboard, label };
  }

  private _model: IClustersModel;
  private _actions: IClustersPanelActions;
  private _body: HTMLTableSectionElement;
  private _rows = new Map<string, IRow>();
}

/**
 * Put one cluster's values into its row.
 *
 * @param row - the row's elements
 * @param cluster - the cluster
 */
function fill(row: IRow, cluster: IClusterInfo): void {
  const { cells } = row;
  row.label.textContent = displayName(cluster.name, cluster.options);
  cells.status.textContent = cluster.status;
  cells.workers.textContent = cluster.workers === null ? '–' : String(cluster.workers);
  cells.resources.textContent = formatResources(cluster);
  showRelativeTime(cells.age, startedAt(cluster.age_seconds));
  // a count being typed is the user's: only fill in the current one when the field is idle
  if (document.activeElement !== row.count && row.count.value === '') {
    row.count.value = String(cluster.workers ?? 0);
  }
  const running = cluster.status === 'running';
  for (const control of row.node.querySelectorAll<HTMLButtonElement>('button')) {
    if (control.dataset.action === 'scale') {
      control.disabled = !running;
    }
  }
  if (cluster.dashboard_link) {
    row.dashboard.href = cluster.dashboard_link;
    row.dashboard.hidden = false;
  } else {
    row.dashboard.removeAttribute('href');
    row.dashboard.hidden = true;
  }
}
