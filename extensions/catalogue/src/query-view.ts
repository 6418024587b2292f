import { actionButton, tableWithHead } from '@continuum-hub/common';

import { FIELD_LABELS, FORM_FIELDS, FormField } from './query-form';
import { QueryModel } from './query-model';
import { IQueryAnswer } from './tokens';

/** Rows of an answer shown in the panel (the rest are in the inserted cell's table). */
export const SHOWN_ROWS = 50;
/** Characters of one cell shown. */
const CELL_CHARS = 80;

let counter = 0;

/**
 * A cell's value as text (bounded).
 */
export function cellText(value: unknown): string {
  const text =
    value === null || value === undefined
      ? ''
      : typeof value === 'string'
        ? value
        : JSON.stringify(value);
  return text.length > CELL_CHARS ? `${text.slice(0, CELL_CHARS - 1)}…` : text;
}

/**
 * What is said above an answer's table: its rows, that it was cut, and what is shown.
 */
export function answerSummary(answer: IQueryAnswer, maxrec: number): string {
  const count = answer.rows.length;
  const parts = [`${count} row${count === 1 ? '' : 's'}`];
  if (answer.truncated) {
    parts.push(`truncated at ${maxrec} rows: narrow the query or ask for more`);
  }
  if (count > SHOWN_ROWS) {
    parts.push(`the first ${SHOWN_ROWS} shown`);
  }
  return parts.join(' · ');
}

/**
 * An answer as a bounded table: the columns (with units), the first {@link SHOWN_ROWS} rows.
 */
export function answerTable(answer: IQueryAnswer): HTMLTableElement {
  const table = tableWithHead(
    'jp-ContinuumCatalogue-answer',
    answer.columns.map(c => (c.unit ? `${c.name} [${c.unit}]` : c.name))
  );
  table.setAttribute('aria-label', 'Query result');
  for (const row of answer.rows.slice(0, SHOWN_ROWS)) {
    const line = table.tBodies[0].insertRow();
    for (const value of row) {
      line.insertCell().textContent = cellText(value);
    }
  }
  return table;
}

/**
 * The query form of a TAP table or service in the entry view: the table (a service's), the
 * cone/time/band fields the table supports or a raw ADQL box, the rows wanted, *Run query*,
 * the answer as a bounded table (or the service's refusal) and *Insert code* for it.
 *
 * The fields are built once and kept (what is typed stays while answers come).
 */
export class QueryView {
  /**
   * @param model - the query
   * @param insertCode - what *Insert code* does with the pyvo cell
   */
  constructor(
    readonly model: QueryModel,
    private _insertCode: (code: string) => void
  ) {
    const id = `jp-ContinuumCatalogue-query-${++counter}`;
    this.node = document.createElement('form');
    this.node.className = 'jp-ContinuumCatalogue-query';
    this.node.setAttribute('aria-label', 'Query this table');
    this.node.noValidate = true;
    this.node.addEventListener('submit', event => {
      event.preventDefault();
      void model.run();
    });
    const heading = document.createElement('h4');
    heading.textContent = 'Query';
    this.node.append(heading, this._tablePicker(), this._modes(id));
    this._form = document.createElement('div');
    this._form.className = 'jp-ContinuumCatalogue-queryForm';
    for (const key of FORM_FIELDS) {
      this._form.append(this._field(key, id));
    }
    const adql = document.createElement('label');
    adql.className = 'jp-ContinuumCatalogue-adql';
    adql.textContent = 'ADQL';
    this._adql = document.createElement('textarea');
    this._adql.name = 'adql';
    this._adql.rows = 4;
    this._adql.spellcheck = false;
    this._adql.className = 'jp-mod-styled';
    this._adql.value = model.adql;
    this._adql.addEventListener('input', () => (model.adql = this._adql.value));
    adql.append(this._adql, this._problem('adql', id));
    this._adqlBox = adql;
    const rows = this._input('maxrec', 'Rows at most', model.maxrec, id, value => {
      model.maxrec = value;
    });
    const run = actionButton('Run query', 'jp-mod-styled jp-mod-accept', 'run-query', () => {
      void model.run();
    });
    run.type = 'submit';
    this._run = run;
    this._status = document.createElement('p');
    this._status.className = 'jp-ContinuumCatalogue-queryStatus';
    this._status.setAttribute('role', 'status');
    this._result = document.createElement('div');
    this._result.className = 'jp-ContinuumCatalogue-queryResult';
    this.node.append(this._form, adql, rows, run, this._status, this._result);
    model.changed.connect(this.render, this);
    this.render();
  }

  /** The form. */
  readonly node: HTMLFormElement;

  render(): void {
    const model = this.model;
    const form = model.mode === 'form';
    this._form.hidden = !form;
    this._adqlBox.hidden = form;
    for (const key of FORM_FIELDS) {
      const field = this._form.querySelector(`[data-field="${key}"]`) as HTMLElement;
      field.hidden = !model.fields.includes(key);
    }
    for (const problem of this.node.querySelectorAll<HTMLElement>('[data-problem]')) {
      const text = model.problems[problem.dataset.problem as FormField] ?? '';
      problem.textContent = text;
      problem.hidden = !text;
      const input = problem.parentElement?.querySelector('input, textarea, select');
      input?.setAttribute('aria-invalid', String(Boolean(text)));
    }
    this._run.disabled = model.running;
    this._status.textContent = model.running
      ? 'Running the query…'
      : model.problems.table
        ? model.problems.table
        : model.answer
          ? answerSummary(model.answer, model.answeredMaxrec)
          : '';
    const parts: HTMLElement[] = [];
    if (model.error) {
      const error = document.createElement('p');
      error.className = 'jp-ContinuumCatalogue-error';
      error.setAttribute('role', 'alert');
      error.textContent = model.error;
      parts.push(error);
    }
    const code = model.code();
    if (model.answer) {
      const insert = actionButton('Insert code', 'jp-mod-styled', 'insert-query-code', () => {
        if (code) {
          this._insertCode(code);
        }
      });
      insert.disabled = code === null;
      insert.title = code ?? 'The service’s address is not known';
      const adql = document.createElement('code');
      adql.className = 'jp-ContinuumCatalogue-queryAdql';
      adql.textContent = model.answer.adql;
      parts.push(adql, insert, answerTable(model.answer));
    }
    this._result.replaceChildren(...parts);
  }

  dispose(): void {
    this.model.changed.disconnect(this.render, this);
  }

  private _tablePicker(): HTMLElement {
    const label = document.createElement('label');
    label.className = 'jp-ContinuumCatalogue-queryTable';
    label.textContent = 'Table ';
    const picker = document.createElement('select');
    picker.name = 'table';
    picker.append(...this.model.tables.map(t => new Option(t, t)));
    picker.value = this.model.table;
    picker.disabled = this.model.tables.length < 2;
    picker.addEventListener('change', () => void this.model.chooseTable(picker.value));
    label.append(picker);
    label.hidden = this.model.tables.length < 2;
    return label;
  }

  private _modes(id: string): HTMLElement {
    const group = document.createElement('fieldset');
    group.className = 'jp-ContinuumCatalogue-queryMode';
    const legend = document.createElement('legend');
    legend.textContent = 'Ask with';
    group.append(legend);
    for (const [mode, text] of [
      ['form', 'the form (cone, time, band)'],
      ['adql', 'ADQL']
    ] as const) {
      const label = document.createElement('label');
      const box = document.createElement('input');
      box.type = 'radio';
      box.name = `${id}-mode`;
      box.value = mode;
      box.checked = this.model.mode === mode;
      box.addEventListener('change', () => {
        this.model.mode = mode;
        this.render();
      });
      label.append(box, ` ${text}`);
      group.append(label);
    }
    return group;
  }

  private _field(key: FormField, id: string): HTMLElement {
    const placeholder =
      key === 'time_from' || key === 'time_to' ? '2024-01-31 or 2024-01-31T12:00' : '';
    const field = this._input(key, FIELD_LABELS[key], this.model.values[key], id, value => {
      this.model.values[key] = value;
    });
    (field.querySelector('input') as HTMLInputElement).placeholder = placeholder;
    return field;
  }

  private _input(
    key: string,
    text: string,
    value: string,
    id: string,
    set: (value: string) => void
  ): HTMLElement {
    const label = document.createElement('label');
    label.dataset.field = key;
    label.textContent = text;
    const input = document.createElement('input');
    input.type = 'text';
    input.name = key;
    input.value = value;
    input.className = 'jp-mod-styled';
    input.inputMode = key.startsWith('time') ? 'text' : 'decimal';
    input.setAttribute('aria-describedby', `${id}-${key}-problem`);
    input.addEventListener('input', () => set(input.value));
    label.append(input, this._problem(key, id));
    return label;
  }

  private _problem(key: string, id: string): HTMLElement {
    const problem = document.createElement('span');
    problem.className = 'jp-ContinuumCatalogue-problem';
    problem.id = `${id}-${key}-problem`;
    problem.dataset.problem = key;
    problem.hidden = true;
    return problem;
  }

  private _form: HTMLDivElement;
  private _adql: HTMLTextAreaElement;
  private _adqlBox: HTMLElement;
  private _run: HTMLButtonElement;
  private _status: HTMLParagraphElement;
  private _result: HTMLDivElement;
}
