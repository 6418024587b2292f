import { ISourceQuery } from './tokens';

/**
 * The query form's fields, in the form's order (the TAP source's form, `sources/adql.py`).
 */
export const FORM_FIELDS = [
  'ra',
  'dec',
  'radius_deg',
  'time_from',
  'time_to',
  'band_min',
  'band_max'
] as const;

/**
 * A field of the query form.
 */
export type FormField = (typeof FORM_FIELDS)[number];

/**
 * What the form's fields hold (text as typed).
 */
export type FormValues = Record<FormField, string>;

/**
 * Each field's label.
 */
export const FIELD_LABELS: Record<FormField, string> = {
  ra: 'RA (degrees)',
  dec: 'Dec (degrees)',
  radius_deg: 'Radius (degrees)',
  time_from: 'From (ISO 8601)',
  time_to: 'To (ISO 8601)',
  band_min: 'Band from (MHz)',
  band_max: 'Band to (MHz)'
};

/**
 * The numbers' bounds, as the service checks them.
 */
const BOUNDS: Partial<Record<FormField, [number, number]>> = {
  ra: [0, 360],
  dec: [-90, 90],
  radius_deg: [0, 90],
  band_min: [0, 1e12],
  band_max: [0, 1e12]
};

/**
 * The form fields each of a table's searchable column groups (its `form_fields`) enables.
 */
const GROUPS: [string[], FormField[]][] = [
  [
    ['ra', 'dec'],
    ['ra', 'dec', 'radius_deg']
  ],
  [
    ['time_min', 'time_max'],
    ['time_from', 'time_to']
  ],
  [
    ['band_min', 'band_max'],
    ['band_min', 'band_max']
  ]
];

/** Rows a query asks for unless the user says otherwise. */
export const DEFAULT_MAXREC = 100;
/** The source's bound on rows when its entry does not say (the TAP source's default). */
export const SOURCE_MAXREC = 1000;

/**
 * `value` as Python's `format(value, 'g')` writes it (the service's messages use it).
 */
export function formatG(value: number): string {
  if (!Number.isFinite(value)) {
    return Number.isNaN(value) ? 'nan' : value > 0 ? 'inf' : '-inf';
  }
  const [mantissa, exponentText] = value.toExponential(5).split('e');
  const exponent = Number(exponentText);
  const strip = (text: string) => (text.includes('.') ? text.replace(/\.?0+$/, '') : text);
  if (exponent >= -4 && exponent < 6) {
    return strip(value.toFixed(5 - exponent));
  }
  const sign = exponent < 0 ? '-' : '+';
  return `${strip(mantissa)}e${sign}${String(Math.abs(exponent)).padStart(2, '0')}`;
}

/**
 * `text` as a Python string literal (`repr`): generated cells quote, never paste, a text.
 */
export function pythonString(text: string): string {
  const quote = text.includes("'") && !text.includes('"') ? '"' : "'";
  let out = '';
  for (const ch of text) {
    const code = ch.codePointAt(0) ?? 0;
    if (ch === '\\' || ch === quote) {
      out += `\\${ch}`;
    } else if (ch === '\n') {
      out += '\\n';
    } else if (ch === '\r') {
      out += '\\r';
    } else if (ch === '\t') {
      out += '\\t';
    } else if (code < 32 || code === 127) {
      out += `\\x${code.toString(16).padStart(2, '0')}`;
    } else {
      out += ch;
    }
  }
  return quote + out + quote;
}

/**
 * The *Insert code* cell of a query: the same as the service's for an entry (pyvo, the ADQL the
 * service ran, the rows asked for).
 *
 * @param url - the TAP service's URL
 * @param adql - the query
 * @param maxrec - the rows it returns at most
 */
export function pyvoCode(url: string, adql: string, maxrec: number): string {
  return (
    'import pyvo\n\n' +
    `service = pyvo.dal.TAPService(${pythonString(url)})\n` +
    `result = service.run_sync(${pythonString(adql)}, maxrec=${Math.trunc(maxrec)})\n` +
    'table = result.to_table()\n' +
    'table\n'
  );
}

/**
 * The form fields a table supports, from its entry's `form_fields` (all when not known).
 *
 * @param formFields - the column groups the service found (`ra`, `dec`, `time_min`, …)
 */
export function availableFields(formFields: readonly string[] | null): FormField[] {
  if (formFields === null) {
    return [...FORM_FIELDS];
  }
  return GROUPS.filter(([needs]) => needs.every(name => formFields.includes(name))).flatMap(
    ([, fields]) => fields
  );
}

/**
 * The form with nothing typed.
 */
export function emptyForm(): FormValues {
  return Object.fromEntries(FORM_FIELDS.map(key => [key, ''])) as FormValues;
}

const DECIMAL = /^\s*[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?\s*$/;
const SPECIAL = /^\s*([+-]?)(inf|infinity|nan)\s*$/i;
const ISO_TIME =
  /^\d{4}-\d{2}-\d{2}([T ]\d{2}(:\d{2}(:\d{2}(\.\d{1,6})?)?)?)?(Z|[+-]\d{2}(:?\d{2})?)?$/;

/**
 * A number field's value, or the service's message for it (null: empty).
 */
function checkNumber(key: FormField, text: string): number | null | { error: string } {
  if (text.trim() === '') {
    return null;
  }
  const [low, high] = BOUNDS[key] ?? [-Infinity, Infinity];
  let number: number;
  const special = SPECIAL.exec(text);
  if (special) {
    number = special[2].toLowerCase() === 'nan' ? NaN : special[1] === '-' ? -Infinity : Infinity;
  } else if (DECIMAL.test(text)) {
    number = Number(text);
  } else {
    return { error: `${key} must be a number, not ${pythonString(text.slice(0, 40))}` };
  }
  if (!Number.isFinite(number) || number < low || number > high) {
    return {
      error: `${key} must be between ${formatG(low)} and ${formatG(high)}, not ${formatG(number)}`
    };
  }
  return number;
}

/**
 * Whether `text` is a date or time the service reads (ISO 8601, as Python's `fromisoformat`).
 */
function isIsoTime(text: string): boolean {
  const match = ISO_TIME.exec(text);
  if (!match) {
    return false;
  }
  const [year, month, day] = text.slice(0, 10).split('-').map(Number);
  const date = new Date(Date.UTC(year, month - 1, day));
  return date.getUTCMonth() === month - 1 && date.getUTCDate() === day;
}

/**
 * The form's problems by field, or nothing to complain about.
 */
export type FormProblems = Partial<Record<FormField | 'maxrec' | 'table' | 'adql', string>>;

/**
 * Check the form as the service would, field by field, with the service's messages.
 *
 * @param values - the fields' text
 * @param fields - the fields the table supports (the others are not sent)
 * @returns the request's form part, or the problems
 */
export function validateForm(
  values: FormValues,
  fields: readonly FormField[]
): { query: ISourceQuery } | { errors: FormProblems } {
  const errors: FormProblems = {};
  const query: Record<string, number | string> = {};
  for (const key of fields) {
    const text = values[key] ?? '';
    if (key === 'time_from' || key === 'time_to') {
      if (text.trim() === '') {
        continue;
      }
      if (isIsoTime(text.trim())) {
        query[key] = text.trim();
      } else {
        errors[key] =
          `${key} must be an ISO 8601 date or time, not ${pythonString(text.slice(0, 40))}`;
      }
      continue;
    }
    const checked = checkNumber(key, text);
    if (checked !== null && typeof checked === 'object') {
      errors[key] = checked.error;
    } else if (checked !== null) {
      query[key] = checked;
    }
  }
  const cone = (['ra', 'dec', 'radius_deg'] as const).filter(key => fields.includes(key));
  const given = cone.filter(key => values[key].trim() !== '');
  if (given.length > 0 && given.length < 3 && cone.every(key => !errors[key])) {
    for (const key of cone.filter(k => !given.includes(k))) {
      errors[key] = 'a cone needs ra, dec and radius_deg (degrees)';
    }
  }
  return Object.keys(errors).length > 0 ? { errors } : { query: query as ISourceQuery };
}

/**
 * The rows asked for, or the service's message when it is not a whole number in `[1, most]`.
 */
export function checkMaxrec(text: string, most: number): number | { error: string } {
  const number = Number(text.trim());
  if (!/^\s*\d+\s*$/.test(text) || number < 1 || number > most) {
    return { error: `maxrec must be a whole number between 1 and ${most}` };
  }
  return number;
}
