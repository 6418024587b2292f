/**
 * The *New Dask cluster* dialog's model: the gateway's cluster options (dask-gateway's
 * specification, built per user by `continuum_hub.gateway.options`) as fields, their checks with
 * the server's own messages, the estimate query and the cluster's readable name.
 */

/**
 * One field of the gateway's options specification (`GET {baseUrl}continuum/clusters/options`).
 */
export interface IOptionField {
  field: string;
  label: string;
  default: unknown;
  spec: {
    type: 'int' | 'float' | 'select' | 'string' | 'bool' | 'mapping';
    min?: number | null;
    max?: number | null;
    options?: string[];
  };
}

/** The dialog's values as typed, by field. */
export type FormValues = Record<string, string>;

/**
 * The pattern of a readable name; mirrors `CLUSTER_LABEL` in `continuum_hub/gateway/options.py`.
 */
export const NAME_PATTERN = /^[A-Za-z0-9][A-Za-z0-9_-]{0,39}$/;

/** The Select value meaning the site's default partition or environment. */
export const DEFAULT = 'default';

/**
 * The fields the dialog shows, in the gateway's order (kinds it cannot show are left out:
 * the gateway then uses their defaults).
 *
 * @param spec - the gateway's specification
 */
export function formFields(spec: IOptionField[]): IOptionField[] {
  return spec.filter(f => ['int', 'float', 'select', 'string'].includes(f.spec.type));
}

/**
 * The first values: the gateway's defaults, with `site` preselected when it is offered.
 *
 * @param spec - the gateway's specification
 * @param site - a site to preselect (e.g. from the catalogue's *Start near the data*)
 */
export function initialValues(spec: IOptionField[], site?: string): FormValues {
  const values: FormValues = {};
  for (const field of formFields(spec)) {
    values[field.field] = field.default === null ? '' : String(field.default ?? '');
  }
  const sites = spec.find(f => f.field === 'site')?.spec.options ?? [];
  if (site && sites.includes(site)) {
    values.site = site;
  }
  return values;
}

/** Python's `%f` of a bound, as in dask-gateway's messages (`must be <= 8.000000`). */
function fixed(bound: number): string {
  return bound.toFixed(6);
}

/**
 * One field's value for the gateway, or the message the gateway would answer.
 *
 * @param field - the field
 * @param text - its value as typed
 */
function parseField(field: IOptionField, text: string): { value: unknown } | { error: string } {
  const { type, min, max, options } = field.spec;
  const name = field.field;
  let value: unknown = text;
  if (type === 'int' || type === 'float') {
    const trimmed = text.trim();
    const pattern = type === 'int' ? /^-?\d+$/ : /^-?(\d+\.?\d*|\.\d+)$/;
    if (!pattern.test(trimmed)) {
      return {
        error: `${name} must be ${type === 'int' ? 'an integer' : 'a float'}, got '${text}'`
      };
    }
    const number = Number(trimmed);
    if (min !== null && min !== undefined && number < min) {
      return { error: `${name} must be >= ${fixed(min)}, got ${trimmed}` };
    }
    if (max !== null && max !== undefined && number > max) {
      return { error: `${name} must be <= ${fixed(max)}, got ${trimmed}` };
    }
    value = number;
  } else if (type === 'select' && !(options ?? []).includes(text)) {
    return { error: `'${text}' is not a valid option for ${name}` };
  }
  return { value };
}

/**
 * Check the values as the gateway does before it asks the site (field types and bounds, the
 * name's pattern, the adaptive bounds' order), with its messages.
 *
 * @param spec - the gateway's specification
 * @param values - the dialog's values
 * @returns the options to send, or the problems by field
 */
export function checkValues(
  spec: IOptionField[],
  values: FormValues
): { options: Record<string, unknown> } | { errors: Record<string, string> } {
  const options: Record<string, unknown> = {};
  const errors: Record<string, string> = {};
  for (const field of formFields(spec)) {
    const parsed = parseField(field, values[field.field] ?? '');
    if ('error' in parsed) {
      errors[field.field] = parsed.error;
    } else {
      options[field.field] = parsed.value;
    }
  }
  const name = options.name;
  if (typeof name === 'string' && name !== '' && !NAME_PATTERN.test(name)) {
    errors.name =
      "name must be 1 to 40 letters, digits, '-' or '_', starting with a letter or digit, " +
      `not '${name}'`;
  }
  const low = options.adaptive_minimum;
  const high = options.adaptive_maximum;
  if (
    typeof low === 'number' &&
    typeof high === 'number' &&
    low > high &&
    !errors.adaptive_minimum
  ) {
    errors.adaptive_minimum = `adaptive minimum ${low} is above the adaptive maximum ${high}`;
  }
  return Object.keys(errors).length ? { errors } : { options };
}

/**
 * The name the gateway makes up when none is given: `<site>-<partition>-<n>` with the smallest
 * `n` free among the user's clusters (`cluster_label` in `continuum_hub/gateway/options.py`).
 *
 * @param site - the chosen site
 * @param partition - the chosen partition (its real name)
 * @param taken - the readable names of the user's clusters
 */
export function generatedName(site: string, partition: string, taken: Iterable<string>): string {
  const names = new Set(taken);
  let n = 1;
  while (names.has(`${site}-${partition}-${n}`)) {
    n += 1;
  }
  return `${site}-${partition}-${n}`;
}

/**
 * The hub's estimate query for a worker of these values (the spawn form's fields: cores,
 * memory, GPUs and walltime of one worker's job).
 *
 * @param values - the dialog's values
 */
export function estimateQuery(values: FormValues): Record<string, string> {
  const query: Record<string, string> = {};
  const pairs: [string, string][] = [
    ['site', 'site'],
    ['partition', 'partition'],
    ['cores', 'worker_cores'],
    ['memory_gb', 'worker_memory_gb'],
    ['gpus', 'worker_gpus']
  ];
  for (const [key, field] of pairs) {
    const text = (values[field] ?? '').trim();
    if (text && text !== DEFAULT) {
      query[key] = text;
    }
  }
  const minutes = Number((values.walltime_minutes ?? '').trim());
  if (Number.isInteger(minutes) && minutes > 0) {
    query.walltime = `${Math.floor(minutes / 60)}:${String(minutes % 60).padStart(2, '0')}`;
  }
  return query;
}

/**
 * A cluster's readable name: its option `name`, else the start of the gateway's id.
 *
 * @param id - the gateway's name of the cluster (32 hex digits)
 * @param options - the options it was created with
 */
export function displayName(id: string, options: Record<string, unknown>): string {
  const name = options.name;
  return typeof name === 'string' && name ? name : id.slice(0, 12);
}

/**
 * The notebook code that connects to a cluster.
 *
 * @param id - the gateway's name of the cluster
 */
export function connectCode(id: string): string {
  return `from dask_gateway import Gateway\ncluster = Gateway().connect("${id}")`;
}
