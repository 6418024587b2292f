import { estimateLine, IEstimate, tableWithHead } from '@continuum-hub/common';
import { Dialog } from '@jupyterlab/apputils';
import { Widget } from '@lumino/widgets';

import { defaultEnvironment, estimateQuery, findPartition, IFormValues } from './form';
import { EnvironmentOption, INotebookParameter, IRunOptions } from './tokens';
import { gridSize, parseValueList } from './values';

/**
 * What the *Run as batch job…* form shows.
 */
export interface IRunFormOptions {
  /** `submit`: everything; `rerun`: only the parameters (a re-run keeps the rest). */
  mode: 'submit' | 'rerun';
  /** The notebook's path (shown). */
  path: string;
  /** The user's sites, partitions and limits. */
  options: IRunOptions;
  /** The notebook's parameters. */
  parameters: INotebookParameter[];
  /** The fields' values. */
  values: IFormValues;
  /** Problems of an earlier try, by field (see `validateForm`). */
  errors?: Record<string, string>;
  /** The first line (default: what submitting does); a workflow step says what it is. */
  intro?: string;
  /** A remark shown at the top (e.g. no parameters cell). */
  note?: string;
  /** Asks the hub when the chosen resources would start; without it no estimate line. */
  estimate?: (query: Record<string, string>) => Promise<IEstimate>;
}

/**
 * Milliseconds without a change before the estimate is asked (as the spawn form waits).
 */
export const ESTIMATE_DELAY = 400;

const RESOURCE_FIELDS: [keyof IFormValues, string, string][] = [
  ['cores', 'Cores', 'number'],
  ['memory_gb', 'Memory (GB)', 'number'],
  ['gpus', 'GPUs', 'number'],
  ['walltime', 'Walltime (H:MM)', 'text']
];

/**
 * An environment as an option of the select: its label shown, its name the value.
 */
function environmentOption(environment: EnvironmentOption): HTMLOptionElement {
  return typeof environment === 'string'
    ? new Option(environment, environment)
    : new Option(environment.label || environment.name, environment.name);
}

/**
 * The dialog's body: resources, parameters pre-filled from the notebook's parameters cell, a
 * sweep editor (values per parameter → a grid, its member count shown) and run settings.
 * Every input has a `name` (`cores`, `parameters.n`, `sweep.n`, …) and shows its problem
 * below it.
 */
export class RunForm extends Widget implements Dialog.IBodyWidget<IFormValues> {
  /**
   * @param options - what the form shows
   */
  constructor(options: IRunFormOptions) {
    super();
    this._options = options;
    this.addClass('jp-ContinuumWorkflows-form');
    const errors = options.errors ?? {};
    const intro = document.createElement('p');
    intro.textContent =
      options.intro ??
      (options.mode === 'submit'
        ? `${options.path}: a snapshot is taken now and runs on the site's batch queue.`
        : `A new run of the same snapshot and resources, with these parameters.`);
    this.node.append(intro);
    if (options.note) {
      const note = document.createElement('p');
      note.className = 'jp-ContinuumWorkflows-note';
      note.textContent = options.note;
      this.node.append(note);
    }
    // problems not tied to one field: the service's refusal, a partition not offered
    for (const key of ['service', 'partition']) {
      addError(this.node, errors[key]);
    }
    if (options.mode === 'submit') {
      this.node.append(this._resources(errors));
    }
    this.node.append(this._parametersTable(errors));
    if (options.mode === 'submit') {
      this.node.append(this._settings(errors));
      this._updateMembers();
      this._scheduleEstimate(0);
    }
  }

  /**
   * Dispose of the form and of a pending estimate request.
   */
  dispose(): void {
    window.clearTimeout(this._estimateTimer);
    super.dispose();
  }

  /**
   * The fields' current values.
   */
  getValue(): IFormValues {
    const values: IFormValues = {
      ...this._options.values,
      parameters: { ...this._options.values.parameters },
      sweep: { ...this._options.values.sweep }
    };
    for (const input of this._inputs) {
      const [group, key] = input.name.split('.', 2);
      if (key !== undefined && (group === 'parameters' || group === 'sweep')) {
        values[group][key] = input.value;
      } else if (group === 'where') {
        const [site, partition] = input.value.split('/', 2);
        values.site = site ?? '';
        values.partition = partition ?? '';
      } else if (group in values) {
        (values as unknown as Record<string, string>)[group] = input.value;
      }
    }
    return values;
  }

  private _resources(errors: Record<string, string>): HTMLElement {
    const { options, values } = this._options;
    const fieldset = section('Where and with what');
    const where = document.createElement('select');
    where.name = 'where';
    for (const site of options.sites) {
      const group = document.createElement('optgroup');
      group.label = site.label || site.name;
      for (const partition of site.partitions) {
        const option = new Option(
          `${site.label || site.name} › ${partition.label || partition.name}`,
          `${site.name}/${partition.name}`
        );
        group.append(option);
      }
      where.append(group);
    }
    where.value = `${values.site}/${values.partition}`;
    this._inputs.push(where);
    fieldset.append(labelled('Site and partition', where, errors.partition));
    this._limits = document.createElement('p');
    this._limits.className = 'jp-ContinuumWorkflows-limits';
    fieldset.append(this._limits);
    for (const [key, label, type] of RESOURCE_FIELDS) {
      const input = document.createElement('input');
      input.type = type;
      input.name = key;
      input.value = String(values[key]);
      if (type === 'number') {
        input.min = key === 'cores' ? '1' : '0';
        input.step = key === 'memory_gb' ? 'any' : '1';
      }
      this._inputs.push(input);
      fieldset.append(labelled(label, input, errors[key]));
    }
    this._environment = document.createElement('select');
    this._environment.name = 'environment';
    this._inputs.push(this._environment);
    fieldset.append(labelled('Software environment', this._environment, errors.environment));
    where.addEventListener('change', () => this._siteChanged(where.value, ''));
    this._siteChanged(where.value, values.environment);
    if (this._options.estimate) {
      this._estimate = document.createElement('p');
      this._estimate.className = 'jp-ContinuumWorkflows-estimate';
      this._estimate.setAttribute('aria-live', 'polite');
      fieldset.append(this._estimate);
      // the fieldset hears its inputs' events after their own handlers (the environment)
      fieldset.addEventListener('input', () => this._scheduleEstimate());
      fieldset.addEventListener('change', () => this._scheduleEstimate());
    }
    return fieldset;
  }

  /**
   * Ask for the estimate once the resources stopped changing for `delay` ms.
   */
  private _scheduleEstimate(delay = ESTIMATE_DELAY): void {
    if (!this._estimate) {
      return;
    }
    window.clearTimeout(this._estimateTimer);
    this._estimateTimer = window.setTimeout(() => void this._askEstimate(), delay);
  }

  /**
   * Show the hub's estimate of the current resources; an answer to an older question is
   * dropped.
   */
  private async _askEstimate(): Promise<void> {
    const ask = this._options.estimate;
    const line = this._estimate;
    if (!ask || !line || this.isDisposed) {
      return;
    }
    const mine = ++this._estimateSeq;
    line.textContent = 'Asking the scheduler when this would start…';
    let text: string;
    try {
      text = estimateLine(await ask(estimateQuery(this.getValue())));
    } catch (error) {
      text = error instanceof Error && error.message ? error.message : 'No estimate';
    }
    if (mine === this._estimateSeq && !this.isDisposed) {
      line.textContent = text;
    }
  }

  private _siteChanged(value: string, environment: string): void {
    const [site, partition] = value.split('/', 2);
    const found = findPartition(this._options.options, site, partition ?? '');
    if (this._limits) {
      this._limits.textContent = found
        ? `At most ${found.partition.max_cores} cores · ${found.partition.max_memory_gb} GB · ` +
          `${found.partition.max_gpus} GPUs · walltime ${found.partition.max_walltime}`
        : '';
    }
    if (this._environment) {
      this._environment.replaceChildren(...(found?.site.environments ?? []).map(environmentOption));
      this._environment.value = environment || defaultEnvironment(found?.site);
    }
  }

  private _parametersTable(errors: Record<string, string>): HTMLElement {
    const { parameters, values, mode } = this._options;
    const fieldset = section('Parameters');
    if (parameters.length === 0) {
      const none = document.createElement('p');
      none.className = 'jp-ContinuumWorkflows-note';
      none.textContent = 'No parameters: the notebook runs as it is.';
      fieldset.append(none);
      return fieldset;
    }
    const titles =
      mode === 'submit' ? ['Name', 'Value', 'Sweep over (a, b, …)'] : ['Name', 'Value'];
    const table = tableWithHead('jp-ContinuumWorkflows-parameters', titles);
    const body = table.tBodies[0];
    for (const parameter of parameters) {
      const row = body.insertRow();
      row.dataset.parameter = parameter.name;
      const name = row.insertCell();
      name.textContent = parameter.name;
      name.title = [parameter.type, parameter.help].filter(t => t && t !== 'any').join(': ');
      const value = row.insertCell();
      const input = this._valueInput(parameter, values.parameters[parameter.name] ?? '');
      value.append(input);
      addError(value, errors[`parameters.${parameter.name}`]);
      if (mode === 'submit') {
        const sweep = document.createElement('input');
        sweep.type = 'text';
        sweep.name = `sweep.${parameter.name}`;
        sweep.value = values.sweep[parameter.name] ?? '';
        sweep.placeholder = parameter.type === 'str' ? 'a, b, c' : '1, 2, 4';
        sweep.setAttribute('aria-label', `Values of ${parameter.name} to sweep over`);
        sweep.addEventListener('input', () => this._updateMembers());
        this._inputs.push(sweep);
        const cell = row.insertCell();
        cell.append(sweep);
        addError(cell, errors[`sweep.${parameter.name}`]);
      }
    }
    fieldset.append(table);
    return fieldset;
  }

  private _valueInput(
    parameter: INotebookParameter,
    text: string
  ): HTMLInputElement | HTMLSelectElement {
    let input: HTMLInputElement | HTMLSelectElement;
    if (parameter.type === 'bool') {
      input = document.createElement('select');
      input.append(new Option('true', 'true'), new Option('false', 'false'));
    } else {
      input = document.createElement('input');
      input.type = parameter.type === 'int' || parameter.type === 'float' ? 'number' : 'text';
      if (parameter.type === 'float') {
        input.step = 'any';
      }
      if (!parameter.known) {
        input.placeholder = parameter.default || '(the notebook’s default)';
      }
    }
    input.name = `parameters.${parameter.name}`;
    input.value = text;
    input.setAttribute('aria-label', `Value of ${parameter.name}`);
    this._inputs.push(input);
    return input;
  }

  private _settings(errors: Record<string, string>): HTMLElement {
    const { values } = this._options;
    const fieldset = section('Run');
    this._members = document.createElement('p');
    this._members.className = 'jp-ContinuumWorkflows-members';
    fieldset.append(this._members);
    addError(fieldset, errors.members);
    const fields: [keyof IFormValues, string, string][] = [
      ['max_parallel', 'At most at once (sweeps)', 'number'],
      ['retries', 'Retries after a node failure', 'number'],
      ['outputs', 'Outputs to keep (comma-separated)', 'text'],
      ['name', 'Name (optional)', 'text']
    ];
    for (const [key, label, type] of fields) {
      const input = document.createElement('input');
      input.type = type;
      input.name = key;
      input.value = String(values[key]);
      this._inputs.push(input);
      fieldset.append(labelled(label, input, errors[key]));
    }
    return fieldset;
  }

  private _updateMembers(): void {
    if (!this._members) {
      return;
    }
    const grid: Record<string, unknown[]> = {};
    const current = this.getValue();
    for (const parameter of this._options.parameters) {
      const parsed = parseValueList(current.sweep[parameter.name] ?? '', parameter.type);
      if ('values' in parsed && parsed.values !== null) {
        grid[parameter.name] = parsed.values;
      }
    }
    const count = gridSize(grid);
    this._members.textContent =
      Object.keys(grid).length === 0
        ? 'One run.'
        : `A sweep of ${count} ${count === 1 ? 'member' : 'members'} (one job array).`;
    this._members.dataset.members = String(count);
  }

  private _options: IRunFormOptions;
  private _inputs: (HTMLInputElement | HTMLSelectElement)[] = [];
  private _limits: HTMLParagraphElement | null = null;
  private _environment: HTMLSelectElement | null = null;
  private _members: HTMLParagraphElement | null = null;
  private _estimate: HTMLParagraphElement | null = null;
  private _estimateTimer: number | undefined = undefined;
  private _estimateSeq = 0;
}

function section(title: string): HTMLFieldSetElement {
  const fieldset = document.createElement('fieldset');
  const legend = document.createElement('legend');
  legend.textContent = title;
  fieldset.append(legend);
  return fieldset;
}

function errorLine(message: string): HTMLElement {
  const line = document.createElement('div');
  line.className = 'jp-ContinuumWorkflows-error';
  line.setAttribute('role', 'alert');
  line.textContent = message;
  return line;
}

function addError(parent: HTMLElement, message: string | undefined): void {
  if (message) {
    parent.append(errorLine(message));
  }
}

function labelled(
  text: string,
  input: HTMLInputElement | HTMLSelectElement,
  error: string | undefined
): HTMLElement {
  const label = document.createElement('label');
  label.className = 'jp-ContinuumWorkflows-field';
  const span = document.createElement('span');
  span.textContent = text;
  label.append(span, input);
  addError(label, error);
  return label;
}
