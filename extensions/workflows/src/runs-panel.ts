import {
  actionButton as button,
  ListPanel,
  showRelativeTime,
  tableWithHead
} from '@continuum-hub/common';

import {
  describeMember,
  describeRun,
  formatValue,
  formatWhere,
  isFinal,
  memberValue,
  parameterNames
} from './format';
import { groupRuns } from './groups';
import { ICredential, IRun, IRunsModel, IWorkflow } from './tokens';

/**
 * What the panel's buttons do (the plugin asks for confirmation and reports failures).
 */
export interface IRunsPanelActions {
  /** Open the executed notebook (of `member` for a sweep). */
  open(run: IRun, member?: number): Promise<void>;
  /** Download the run folder as a tar.gz (no credentials in it). */
  download(run: IRun): Promise<void>;
  /** Cancel the run (after confirmation). */
  cancel(run: IRun): Promise<void>;
  /** Open the dialog pre-filled with the run's parameters, and run again. */
  rerun(run: IRun): Promise<void>;
  /** Build a chain of notebook steps and save it as a workflow file (*Workflow…*). */
  workflow?(): Promise<void>;
  /** Revoke a run credential (after confirmation). */
  revoke(credential: ICredential): Promise<void>;
}

const RUN_COLUMNS: [string, string][] = [
  ['name', 'Run'],
  ['state', 'State'],
  ['where', 'Where'],
  ['age', 'Submitted'],
  ['actions', '']
];

/**
 * A row of the runs table with its cells by column (`data-field`).
 */
function tableRow(
  className: string,
  state: string
): [HTMLTableRowElement, Record<string, HTMLTableCellElement>] {
  const row = document.createElement('tr');
  row.className = className;
  row.dataset.state = state;
  const cells: Record<string, HTMLTableCellElement> = {};
  for (const [key, title] of RUN_COLUMNS) {
    cells[key] = row.insertCell();
    cells[key].dataset.field = key;
    cells[key].dataset.label = title; // the card's label when the panel is narrow
  }
  return [row, cells];
}

/**
 * The *Batch runs* side panel: the user's runs with their live state and actions, the
 * comparison of a sweep's members, and the run credentials with *Revoke*.
 */
export class RunsPanel extends ListPanel {
  /**
   * @param model - the runs model shown
   * @param actions - what the buttons do
   * @param now - the clock (a seam for tests)
   */
  constructor(model: IRunsModel, actions: IRunsPanelActions, now: () => number = Date.now) {
    super('jp-ContinuumWorkflows', 'Batch runs');
    this._model = model;
    this._actions = actions;
    this._now = now;
    this.bar.append(button('Refresh', 'jp-mod-styled', 'refresh', () => void model.refresh()));
    const workflow = actions.workflow;
    if (workflow) {
      this.bar.append(
        button('Workflow…', 'jp-mod-styled', 'workflow', () => this.runAction(workflow()))
      );
    }
    const table = tableWithHead(
      'jp-ContinuumWorkflows-table jp-ContinuumWorkflows-runs',
      RUN_COLUMNS.map(([, label]) => label)
    );
    this._body = table.tBodies[0];
    this._compare = document.createElement('div');
    this._compare.className = 'jp-ContinuumWorkflows-compare';
    const credentialsHeading = document.createElement('h3');
    credentialsHeading.textContent = 'Credentials';
    this._credentials = document.createElement('div');
    this._credentials.className = 'jp-ContinuumWorkflows-credentials';
    this.node.append(table, this._compare, credentialsHeading, this._credentials);
    model.changed.connect(this.render, this);
    this.render();
  }

  /**
   * The run whose members are compared, or null.
   */
  get comparing(): string | null {
    return this._comparing;
  }

  /**
   * Show the members of a sweep side by side (null hides the comparison).
   *
   * @param id - the run's id
   */
  compare(id: string | null): void {
    this._comparing = id;
    this.render();
  }

  /**
   * Write the model's state into the node.
   */
  render(): void {
    const runs = this._model.runs;
    this.showState(
      runs,
      this._model.error,
      'Asking the workflows service…',
      'No batch runs yet. Open a notebook and choose Run as batch job….'
    );
    // a workflow's runs under a row of their own, in the order of its steps
    this._body.replaceChildren(
      ...groupRuns(runs ?? [], this._model.workflows ?? []).flatMap(entry =>
        'run' in entry
          ? [this._row(entry.run)]
          : [this._workflowRow(entry.workflow), ...entry.runs.map(run => this._row(run, true))]
      )
    );
    const compared = (runs ?? []).find(r => r.id === this._comparing);
    this._compare.replaceChildren(...(compared ? this._comparison(compared) : []));
    this._credentials.replaceChildren(this._credentialsTable(this._model.credentials));
  }

  private _workflowRow(workflow: IWorkflow): HTMLTableRowElement {
    const [row, cells] = tableRow('jp-ContinuumWorkflows-workflow', workflow.state);
    row.dataset.workflow = workflow.id;
    cells.name.textContent = `Workflow ${workflow.name}`;
    cells.name.title = workflow.id;
    cells.state.textContent = workflow.reason
      ? `${workflow.state}: ${workflow.reason}`
      : workflow.state;
    const steps = Object.keys(workflow.steps).length;
    cells.where.textContent = `${steps} ${steps === 1 ? 'step' : 'steps'}`;
    showRelativeTime(cells.age, workflow.created, '', this._now());
    return row;
  }

  private _row(run: IRun, step = false): HTMLTableRowElement {
    const [row, cells] = tableRow(step ? 'jp-ContinuumWorkflows-step' : '', run.state);
    row.dataset.run = run.id;
    const name = run.name || run.notebook?.path || run.id;
    // a workflow's step: its name first, the workflow in the tooltip
    cells.name.textContent = run.step ? `${run.step} · ${name}` : name;
    cells.name.title = [
      run.id,
      run.workflow_id ? `step of ${run.workflow_id}` : '',
      run.based_on ? `re-run of ${run.based_on}` : ''
    ]
      .filter(part => part)
      .join(', ');
    cells.state.textContent = describeRun(run);
    cells.where.textContent = formatWhere(run);
    showRelativeTime(cells.age, run.submitted ?? run.created, '', this._now());
    const members = run.members ?? [];
    const sweep = members.length > 1;
    const actions = cells.actions;
    if (!sweep && members.some(m => m.state === 'done' || m.state === 'failed')) {
      actions.append(
        button('Open', 'jp-mod-styled', 'open', () => this.runAction(this._actions.open(run)))
      );
    }
    if (isFinal(run.state)) {
      actions.append(
        button('Download', 'jp-mod-styled', 'download', () =>
          this.runAction(this._actions.download(run))
        )
      );
    }
    if (sweep) {
      actions.append(
        button('Compare', 'jp-mod-styled', 'compare', () =>
          this.compare(this._comparing === run.id ? null : run.id)
        )
      );
    }
    if (!isFinal(run.state)) {
      actions.append(
        button('Cancel', 'jp-mod-styled jp-mod-warn', 'cancel', () =>
          this.runAction(this._actions.cancel(run))
        )
      );
    }
    actions.append(
      button('Re-run', 'jp-mod-styled', 'rerun', () => this.runAction(this._actions.rerun(run)))
    );
    return row;
  }

  private _comparison(run: IRun): HTMLElement[] {
    const heading = document.createElement('h3');
    heading.textContent = `Members of ${run.name || run.id}`;
    const close = button('Close', 'jp-mod-styled', 'close-compare', () => this.compare(null));
    const names = parameterNames(run);
    const table = tableWithHead('jp-ContinuumWorkflows-table', [
      '#',
      ...names,
      'State',
      'Node',
      ''
    ]);
    table.dataset.compare = run.id;
    const body = table.tBodies[0];
    for (const member of run.members ?? []) {
      const row = body.insertRow();
      row.dataset.member = String(member.index);
      row.insertCell().textContent = String(member.index);
      for (const name of names) {
        const cell = row.insertCell();
        cell.dataset.parameter = name;
        cell.textContent = formatValue(memberValue(run, member, name));
      }
      const state = row.insertCell();
      state.dataset.field = 'state';
      state.textContent = describeMember(member);
      row.insertCell().textContent = member.node || '–';
      const actions = row.insertCell();
      if (member.state === 'done' || member.state === 'failed') {
        actions.append(
          button('Open', 'jp-mod-styled', 'open', () =>
            this.runAction(this._actions.open(run, member.index))
          )
        );
      }
    }
    return [heading, close, table];
  }

  private _credentialsTable(credentials: ICredential[] | null): HTMLElement {
    if (!credentials || credentials.length === 0) {
      const none = document.createElement('p');
      none.className = 'jp-ContinuumWorkflows-empty';
      none.textContent = credentials ? 'No run credentials.' : '';
      return none;
    }
    const table = tableWithHead('jp-ContinuumWorkflows-table', ['For', 'Expires', 'Status', '']);
    const body = table.tBodies[0];
    for (const credential of credentials) {
      const row = body.insertRow();
      row.dataset.credential = credential.id;
      row.insertCell().textContent = credential.run_id ?? credential.workflow_id ?? '–';
      row.insertCell().textContent = credential.expires.replace('T', ' ').replace(/\..*$/, '');
      row.insertCell().textContent = credential.revoked ? 'revoked' : 'active';
      const actions = row.insertCell();
      if (!credential.revoked) {
        actions.append(
          button('Revoke', 'jp-mod-styled jp-mod-warn', 'revoke', () =>
            this.runAction(this._actions.revoke(credential))
          )
        );
      }
    }
    return table;
  }

  private _model: IRunsModel;
  private _actions: IRunsPanelActions;
  private _now: () => number;
  private _body: HTMLTableSectionElement;
  private _compare: HTMLDivElement;
  private _credentials: HTMLDivElement;
  private _comparing: string | null = null;
}
