import { errorMessage } from '@continuum-hub/common';
import { ISignal, Signal } from '@lumino/signaling';

import {
  availableFields,
  checkMaxrec,
  DEFAULT_MAXREC,
  emptyForm,
  FORM_FIELDS,
  FormField,
  FormProblems,
  FormValues,
  pyvoCode,
  SOURCE_MAXREC,
  validateForm
} from './query-form';
import { ICatalogueAPI, IEntry, IQueryAnswer, ISourceQuery } from './tokens';

/**
 * Whether the entry is a table or the service of a source that runs queries (a TAP source's
 * `table` entry, or its own `service` entry listing its tables).
 */
export function isQueryable(entry: IEntry): boolean {
  const metadata = entry.metadata ?? {};
  return (
    (entry.kind === 'table' && Array.isArray(metadata.form_fields)) ||
    (entry.kind === 'service' && Array.isArray(metadata.tables))
  );
}

function strings(value: unknown): string[] | null {
  return Array.isArray(value) ? value.map(String) : null;
}

/**
 * The query form of a TAP entry: the table, the form's fields or raw ADQL, the rows wanted; its
 * last answer or refusal.  Only the latest run's answer is kept.
 */
export class QueryModel {
  constructor(
    private _api: ICatalogueAPI,
    readonly entry: IEntry
  ) {
    const metadata = entry.metadata ?? {};
    this.tables = entry.kind === 'table' ? [entry.identifier] : (strings(metadata.tables) ?? []);
    this._table = this.tables[0] ?? '';
    this._fields = availableFields(entry.kind === 'table' ? strings(metadata.form_fields) : null);
    this.serviceUrl = typeof metadata.service === 'string' ? metadata.service : '';
    this.mostRows = typeof metadata.maxrec === 'number' ? metadata.maxrec : SOURCE_MAXREC;
    this.maxrec = String(Math.min(DEFAULT_MAXREC, this.mostRows));
    this.adql =
      typeof metadata.example_query === 'string'
        ? metadata.example_query
        : this._table
          ? `SELECT TOP ${DEFAULT_MAXREC} * FROM ${this._table}`
          : '';
  }

  /** The tables one may query (one for a table entry). */
  readonly tables: string[];
  /** The TAP service's URL (for the pyvo cell). */
  readonly serviceUrl: string;
  /** The most rows the source returns. */
  readonly mostRows: number;

  /** The fields' text. */
  values: FormValues = emptyForm();
  /** The raw query. */
  adql: string;
  /** `form`: the fields are sent; `adql`: the raw query is. */
  mode: 'form' | 'adql' = 'form';
  /** Rows wanted (text as typed). */
  maxrec: string;

  /** Emitted when the table, problems, answer or running state change. */
  get changed(): ISignal<this, void> {
    return this._changed;
  }

  get table(): string {
    return this._table;
  }

  /** The form fields the chosen table supports. */
  get fields(): readonly FormField[] {
    return this._fields;
  }

  get problems(): FormProblems {
    return this._problems;
  }

  get answer(): IQueryAnswer | null {
    return this._answer;
  }

  /** The service's refusal or the failure of the last run. */
  get error(): string | null {
    return this._error;
  }

  get running(): boolean {
    return this._running;
  }

  /** The rows the answer's query asked for. */
  get answeredMaxrec(): number {
    return this._answeredMaxrec;
  }

  /**
   * Choose the table (of a service): its form fields are asked of the catalogue (all are
   * offered when it does not say).
   */
  async chooseTable(table: string): Promise<void> {
    if (table === this._table || !this.tables.includes(table)) {
      return;
    }
    this._table = table;
    this._fields = [...FORM_FIELDS];
    this._changed.emit();
    try {
      const found = await this._api.entry(`${this.entry.source}:${table}`);
      if (this._table === table) {
        this._fields = availableFields(strings(found.metadata?.form_fields));
      }
    } catch {
      // unknown: every field stays, and the service says what the table lacks
    }
    this._changed.emit();
  }

  /**
   * The request the form or the ADQL box makes now, or their problems (the service's words).
   */
  request(): { query: ISourceQuery } | { errors: FormProblems } {
    const rows = checkMaxrec(this.maxrec, this.mostRows);
    const errors: FormProblems = typeof rows === 'number' ? {} : { maxrec: rows.error };
    let query: ISourceQuery = {};
    if (this.mode === 'adql') {
      if (this.adql.trim() === '') {
        errors.adql = 'adql must be a non-empty text';
      }
      query = { adql: this.adql };
    } else if (!this._table) {
      errors.table = 'a query needs adql or a table';
    } else {
      const form = validateForm(this.values, this._fields);
      if ('errors' in form) {
        Object.assign(errors, form.errors);
      } else {
        query = { table: this._table, ...form.query };
      }
    }
    if (Object.keys(errors).length > 0) {
      return { errors };
    }
    return { query: { ...query, maxrec: rows as number } };
  }

  /**
   * Check and run the query; the answer (or the service's refusal) replaces the last one.
   */
  async run(): Promise<void> {
    const request = this.request();
    if ('errors' in request) {
      this._problems = request.errors;
      this._changed.emit();
      return;
    }
    const run = ++this._runs;
    this._problems = {};
    this._running = true;
    this._error = null;
    this._changed.emit();
    try {
      const answer = await this._api.query(this.entry.source, request.query);
      if (run === this._runs) {
        this._answer = answer;
        this._answeredMaxrec = request.query.maxrec ?? this.mostRows;
      }
    } catch (error) {
      if (run === this._runs) {
        this._answer = null;
        this._error = errorMessage(error);
      }
    }
    if (run === this._runs) {
      this._running = false;
      this._changed.emit();
    }
  }

  /**
   * The pyvo cell running the answered query; null before an answer.
   */
  code(): string | null {
    if (!this._answer || !this.serviceUrl) {
      return null;
    }
    return pyvoCode(this.serviceUrl, this._answer.adql, this._answeredMaxrec);
  }

  private _table: string;
  private _fields: FormField[];
  private _problems: FormProblems = {};
  private _answer: IQueryAnswer | null = null;
  private _answeredMaxrec = 0;
  private _error: string | null = null;
  private _running = false;
  private _runs = 0;
  private _changed = new Signal<this, void>(this);
}
