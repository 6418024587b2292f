import { showRelativeTime } from '@continuum-hub/common';
import { Widget } from '@lumino/widgets';

import { IJobInfo, ISessionModel } from './tokens';
import { formatRemaining } from './walltime';

/**
 * What the panel's buttons do.
 */
export interface ISessionPanelActions {
  /** Open the hub's control panel. */
  controlPanel(): void;
  /** Stop this server (and so the job), after confirmation. */
  stopServer(): void;
}

/**
 * The side panel: the job's details, and the hub actions.
 */
export class SessionPanel extends Widget {
  /**
   * @param model - the session model shown
   * @param actions - what the buttons do
   */
  constructor(model: ISessionModel, actions: ISessionPanelActions) {
    super();
    this._model = model;
    this.addClass('jp-ContinuumSession-panel');
    this.title.caption = 'Batch job of this session';

    const heading = document.createElement('h2');
    heading.textContent = 'Session';
    this._table = document.createElement('dl');
    this._table.className = 'jp-ContinuumSession-details';
    this._note = document.createElement('p');
    this._note.className = 'jp-ContinuumSession-note';

    const buttons = document.createElement('div');
    buttons.className = 'jp-ContinuumSession-buttons';
    buttons.append(
      button('Hub control panel', 'jp-mod-styled jp-mod-accept', () => actions.controlPanel()),
      button('Stop server…', 'jp-mod-styled jp-mod-warn', () => actions.stopServer())
    );
    this.node.append(heading, this._table, this._note, buttons);
    model.changed.connect(this.update, this);
    this.update();
  }

  protected onUpdateRequest(): void {
    if (this.isVisible || !this._rendered) {
      this.render();
    }
  }

  protected onAfterShow(): void {
    this.render();
  }

  /**
   * Write the current state into the node.
   */
  render(): void {
    this._rendered = true;
    const info = this._model.info;
    this._table.replaceChildren(...rows(info, this._model.remainingSeconds));
    this._note.textContent = this._model.error
      ? `Could not refresh the job's information: ${this._model.error}`
      : info?.source === 'environment'
        ? 'The hub could not be asked; showing what the job was started with.'
        : '';
  }

  private _model: ISessionModel;
  private _table: HTMLDListElement;
  private _note: HTMLParagraphElement;
  private _rendered = false;
}

function button(label: string, className: string, onClick: () => void): HTMLButtonElement {
  const node = document.createElement('button');
  node.type = 'button';
  node.className = className;
  node.textContent = label;
  node.addEventListener('click', onClick);
  return node;
}

/**
 * The rows of the details list, label and value.
 *
 * @param info - the job information, or null before the first answer
 * @param remaining - seconds left now
 * @returns the `dt`/`dd` elements
 */
export function rows(info: IJobInfo | null, remaining: number | null): HTMLElement[] {
  const show = (value: string | number | null, unit = ''): string =>
    value === null || value === '' ? '–' : `${value}${unit}`;
  const entries: [string, string, string][] = info
    ? [
        ['site', 'Site', info.site_label ? `${info.site_label} (${info.site})` : show(info.site)],
        ['partition', 'Partition', show(info.partition)],
        ['job-id', 'Job id', show(info.job_id)],
        ['state', 'State', info.state],
        ['node', 'Node', show(info.node)],
        ['cores', 'Cores', show(info.cores)],
        ['memory', 'Memory', show(info.memory_gb, ' GB')],
        ['gpus', 'GPUs', show(info.gpus)],
        ['environment', 'Environment', info.environment || 'default'],
        ['start', 'Started', ''],
        ['end', 'Ends', ''],
        ['remaining', 'Time left', formatRemaining(remaining)]
      ]
    : [['state', 'State', 'asking the hub…']];
  return entries.flatMap(([key, label, value]) => {
    const dt = document.createElement('dt');
    dt.textContent = label;
    const dd = document.createElement('dd');
    dd.textContent = value;
    dd.dataset.field = key;
    // times relative ("3 minutes ago"), the absolute time in the user's locale on hover
    if (info && (key === 'start' || key === 'end')) {
      showRelativeTime(dd, key === 'start' ? info.start_time : info.end_time);
    }
    return [dt, dd];
  });
}
