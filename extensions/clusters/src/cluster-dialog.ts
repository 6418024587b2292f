import { estimateLine, errorMessage, IEstimate } from '@continuum-hub/common';
import { Dialog, showDialog } from '@jupyterlab/apputils';
import { Widget } from '@lumino/widgets';

import {
  checkValues,
  DEFAULT,
  estimateQuery,
  formFields,
  FormValues,
  generatedName,
  initialValues,
  IOptionField
} from './cluster-form';

/**
 * What the dialog asks of the server extension.
 */
export interface IClusterDialogAPI {
  /** The gateway's cluster options for this user. */
  options(): Promise<IOptionField[]>;
  /** Start a cluster; its id. */
  create(options: Record<string, unknown>): Promise<string>;
  /** The hub's estimate for the spawn form's fields. */
  estimate(query: Record<string, string>): Promise<IEstimate>;
}

/** Milliseconds of quiet typing before the estimate is asked again. */
const ESTIMATE_DELAY = 400;

/**
 * The dialog's body: one labelled control per option, each with its problem, the server's
 * refusal and the live estimate line.
 */
export class ClusterForm extends Widget implements Dialog.IBodyWidget<FormValues> {
  /**
   * @param spec - the gateway's options
   * @param values - the values shown
   * @param errors - problems by field (`service`: the server's refusal)
   * @param taken - the readable names of the user's clusters (for the name's placeholder)
   * @param estimate - asks the hub for an estimate; without it no estimate line
   */
  constructor(
    spec: IOptionField[],
    values: FormValues,
    errors: Record<string, string>,
    taken: string[],
    estimate?: (query: Record<string, string>) => Promise<IEstimate>
  ) {
    super();
    this.addClass('jp-ContinuumClusterForm');
    this._taken = taken;
    this._estimate = estimate;
    if (errors.service) {
      const refusal = document.createElement('p');
      refusal.className = 'jp-ContinuumClusterForm-refusal';
      refusal.setAttribute('role', 'alert');
      refusal.textContent = errors.service;
      this.node.append(refusal);
    }
    for (const field of formFields(spec)) {
      this.node.append(this._row(field, values[field.field] ?? '', errors[field.field]));
    }
    this._line = document.createElement('p');
    this._line.className = 'jp-ContinuumClusterForm-estimate';
    this._line.setAttribute('aria-live', 'polite');
    this.node.append(this._line);
    this.node.addEventListener('change', () => this._changed());
    this.node.addEventListener('input', () => this._changed());
    this._changed();
  }

  /**
   * The values as typed, by field.
   */
  getValue(): FormValues {
    const values: FormValues = {};
    for (const [field, control] of this._controls) {
      values[field] = control.value;
    }
    return values;
  }

  dispose(): void {
    window.clearTimeout(this._timer);
    super.dispose();
  }

  private _row(field: IOptionField, value: string, error?: string): HTMLElement {
    const row = document.createElement('div');
    row.className = 'jp-ContinuumClusterForm-row';
    const id = `jp-ContinuumClusterForm-${field.field}`;
    const label = document.createElement('label');
    label.htmlFor = id;
    label.textContent = field.label || field.field;
    let control: HTMLInputElement | HTMLSelectElement;
    if (field.spec.type === 'select') {
      control = document.createElement('select');
      for (const option of field.spec.options ?? []) {
        control.append(new Option(option, option));
      }
    } else {
      control = document.createElement('input');
      if (field.spec.type === 'string') {
        control.type = 'text';
      } else {
        control.type = 'number';
        control.step = field.spec.type === 'int' ? '1' : 'any';
        for (const bound of ['min', 'max'] as const) {
          const limit = field.spec[bound];
          if (limit !== null && limit !== undefined) {
            control[bound] = String(limit);
          }
        }
      }
    }
    control.id = id;
    control.name = field.field;
    control.className = 'jp-mod-styled';
    control.value = value;
    this._controls.set(field.field, control);
    row.append(label, control);
    if (error) {
      const problem = document.createElement('span');
      problem.className = 'jp-ContinuumClusterForm-error';
      problem.id = `${id}-error`;
      problem.textContent = error;
      control.setAttribute('aria-invalid', 'true');
      control.setAttribute('aria-describedby', problem.id);
      row.append(problem);
    }
    return row;
  }

  private _changed(): void {
    const values = this.getValue();
    const name = this._controls.get('name');
    if (name instanceof HTMLInputElement) {
      // the gateway names it after the real partition; the site's default is not known here
      const partition = values.partition && values.partition !== DEFAULT ? values.partition : '…';
      name.placeholder = generatedName(values.site ?? '', partition, this._taken);
    }
    window.clearTimeout(this._timer);
    if (this._estimate) {
      this._timer = window.setTimeout(() => void this._ask(values), ESTIMATE_DELAY);
    }
  }

  private async _ask(values: FormValues): Promise<void> {
    const ask = this._estimate;
    if (!ask) {
      return;
    }
    const mine = ++this._sequence;
    let text: string;
    try {
      text = estimateLine(await ask(estimateQuery(values)));
    } catch (error) {
      text = errorMessage(error) || 'No estimate';
    }
    if (mine === this._sequence && !this.isDisposed) {
      this._line.textContent = text;
    }
  }

  private _controls = new Map<string, HTMLInputElement | HTMLSelectElement>();
  private _line: HTMLParagraphElement;
  private _taken: string[];
  private _estimate?: (query: Record<string, string>) => Promise<IEstimate>;
  private _timer = 0;
  private _sequence = 0;
}

/**
 * *New Dask cluster*: show the gateway's options until the gateway accepts them (its refusal,
 * a 4xx, is shown verbatim in the dialog) or the user cancels.
 *
 * @param api - the server extension's routes
 * @param taken - the readable names of the user's clusters
 * @param site - a site to preselect
 * @returns the new cluster's id, or null when cancelled
 */
export async function newClusterDialog(
  api: IClusterDialogAPI,
  taken: string[],
  site?: string
): Promise<string | null> {
  const spec = await api.options();
  let values = initialValues(spec, site);
  let errors: Record<string, string> = {};
  for (;;) {
    const answer = await showDialog({
      title: 'New Dask cluster',
      body: new ClusterForm(spec, values, errors, taken, query => api.estimate(query)),
      buttons: [Dialog.cancelButton(), Dialog.okButton({ label: 'Create' })]
    });
    if (!answer.button.accept || answer.value === null) {
      return null;
    }
    values = answer.value;
    const checked = checkValues(spec, values);
    if ('errors' in checked) {
      errors = checked.errors;
      continue;
    }
    try {
      return await api.create(checked.options);
    } catch (error) {
      // a ServerConnection.ResponseError carries the answer: its 4xx is the gateway's refusal
      const status = (error as { response?: Response }).response?.status ?? 0;
      if (status < 400 || status >= 500) {
        throw error;
      }
      errors = { service: errorMessage(error) };
    }
  }
}
