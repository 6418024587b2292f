import {
  INotebookParameter,
  IPartitionOption,
  IRunOptions,
  ISiteOption,
  ISubmitRequest
} from './tokens';
import { gridSize, parseValue, parseValueList, valueText } from './values';

/**
 * The most members of one sweep when the service does not say (`WorkflowLimits`' default).
 */
export const DEFAULT_MAX_MEMBERS = 1000;

/**
 * The most retries a run may ask for when the service does not say.
 */
export const MAX_RETRIES = 5;

/**
 * What the dialog's fields hold, as typed (validated by {@link validateForm}).
 */
export interface IFormValues {
  name: string;
  site: string;
  partition: string;
  cores: string;
  memory_gb: string;
  gpus: string;
  walltime: string;
  environment: string;
  /** One text per parameter (its value). */
  parameters: Record<string, string>;
  /** One text per parameter: the swept values, empty when not swept. */
  sweep: Record<string, string>;
  max_parallel: string;
  outputs: string;
  retries: string;
}

/**
 * The result of {@link validateForm}: the request, or the problems by field (`parameters.n`,
 * `sweep.n`, `cores`, …; `members` for the sweep's size).
 */
export type Validated =
  | { request: ISubmitRequest; members: number }
  | { errors: Record<string, string>; members: number };

/**
 * A site's partition, or undefined.
 *
 * @param options - the user's options
 * @param site - the site's name
 * @param partition - the partition's name
 */
export function findPartition(
  options: IRunOptions,
  site: string,
  partition: string
): { site: ISiteOption; partition: IPartitionOption } | undefined {
  const found = options.sites.find(s => s.name === site);
  const part = found?.partitions.find(p => p.name === partition);
  return found && part ? { site: found, partition: part } : undefined;
}

/**
 * Minutes of a walltime written `H:MM`, `HH:MM:SS`, `D-HH:MM:SS` or as minutes; null if unusable.
 *
 * @param value - the walltime
 */
export function walltimeMinutes(value: string | number): number | null {
  if (typeof value === 'number') {
    return Number.isFinite(value) && value > 0 ? value : null;
  }
  const match = /^(?:(\d+)-)?(\d+)(?::(\d{1,2}))?(?::(\d{1,2}))?$/.exec(value.trim());
  if (!match) {
    return null;
  }
  const [, days, first, second, third] = match;
  if (second === undefined) {
    return days === undefined ? Number(first) || null : null;
  }
  const minutes = Number(days ?? 0) * 1440 + Number(first) * 60 + Number(second);
  return minutes + (third === undefined ? 0 : Number(third) / 60) || null;
}

/**
 * The largest sweep the service accepts.
 *
 * @param options - the user's options
 */
export function maxMembers(options: IRunOptions): number {
  return limit(options, 'max_sweep_members', DEFAULT_MAX_MEMBERS);
}

function limit(options: IRunOptions, name: string, otherwise: number): number {
  const value = options.limits?.[name];
  return typeof value === 'number' && value >= 0 ? value : otherwise;
}

/**
 * A site's software environment to start with: the one marked default, else the first.
 *
 * @param site - the site, if any
 */
export function defaultEnvironment(site: ISiteOption | undefined): string {
  const environments = site?.environments ?? [];
  const chosen =
    environments.find(e => typeof e !== 'string' && e.default) ?? environments[0] ?? '';
  return typeof chosen === 'string' ? chosen : chosen.name;
}

/**
 * The `site` argument of *Run as batch job…* (the catalogue's *Start near the data* passes the
 * site holding the data), to preselect in the dialog; empty when absent or not text.
 *
 * @param args - the command's arguments
 */
export function siteArgument(args: Record<string, unknown>): string {
  return typeof args.site === 'string' ? args.site : '';
}

/**
 * The dialog's first values: the site asked for (else the first), its default partition and
 * environment, one core, the partition's default walltime, the parameters' defaults.
 *
 * @param options - the user's options
 * @param parameters - the notebook's parameters
 * @param preselect - the site to choose when the user may use it (e.g. where the data are)
 */
export function initialValues(
  options: IRunOptions,
  parameters: INotebookParameter[],
  preselect = ''
): IFormValues {
  const site = options.sites.find(s => s.name === preselect) ?? options.sites[0];
  const partition = site?.partitions.find(p => p.default) ?? site?.partitions[0];
  return {
    name: '',
    site: site?.name ?? '',
    partition: partition?.name ?? '',
    cores: '1',
    memory_gb: partition ? String(Math.min(2, partition.max_memory_gb)) : '2',
    gpus: '0',
    walltime: partition ? String(partition.default_walltime) : '1:00',
    environment: defaultEnvironment(site),
    parameters: Object.fromEntries(
      parameters.map(p => [p.name, p.known ? valueText(p.value) : ''])
    ),
    sweep: Object.fromEntries(parameters.map(p => [p.name, ''])),
    max_parallel: '',
    outputs: '',
    retries: '0'
  };
}

/**
 * The spawn form's fields among the values, as the hub's estimate reads them (empty ones left
 * out: the hub's defaults apply).
 *
 * @param values - the dialog's values
 */
export function estimateQuery(values: IFormValues): Record<string, string> {
  const query: Record<string, string> = {};
  const fields = [
    'site',
    'partition',
    'cores',
    'memory_gb',
    'gpus',
    'walltime',
    'environment'
  ] as const;
  for (const key of fields) {
    const text = values[key].trim();
    if (text) {
      query[key] = text;
    }
  }
  return query;
}

function wholeNumber(text: string, low: number, high: number, what: string): number | string {
  const trimmed = text.trim();
  if (!/^\d+$/.test(trimmed)) {
    return `${what} must be a whole number`;
  }
  const value = Number(trimmed);
  return value < low || value > high ? `${what} must be from ${low} to ${high}` : value;
}

/**
 * Check the dialog's values against the user's options and the notebook's parameters, and build
 * the submit request. The service checks everything again; this says what is wrong before.
 *
 * @param path - the notebook's path
 * @param values - what the fields hold
 * @param parameters - the notebook's parameters
 * @param options - the user's sites, partitions and limits
 */
export function validateForm(
  path: string,
  values: IFormValues,
  parameters: INotebookParameter[],
  options: IRunOptions
): Validated {
  const errors: Record<string, string> = {};
  const found = findPartition(options, values.site, values.partition);
  if (!found) {
    errors.partition = 'Choose a site and partition you may use.';
  }
  const limits = found?.partition;
  const cores = wholeNumber(values.cores, 1, limits?.max_cores ?? 1, 'Cores');
  const gpus = wholeNumber(values.gpus, 0, limits?.max_gpus ?? 0, 'GPUs');
  const memory = Number(values.memory_gb.trim());
  if (typeof cores === 'string') {
    errors.cores = cores;
  }
  if (typeof gpus === 'string') {
    errors.gpus = gpus;
  }
  if (!(memory > 0) || (limits && memory > limits.max_memory_gb)) {
    errors.memory_gb = `Memory must be more than 0 and at most ${limits?.max_memory_gb ?? '?'} GB`;
  }
  const minutes = walltimeMinutes(values.walltime);
  const most = limits ? walltimeMinutes(limits.max_walltime) : null;
  if (minutes === null) {
    errors.walltime = 'Walltime as H:MM (or minutes)';
  } else if (most !== null && minutes > most) {
    errors.walltime = `At most ${limits?.max_walltime} on this partition`;
  }

  const chosen: Record<string, unknown> = {};
  const grid: Record<string, unknown[]> = {};
  for (const parameter of parameters) {
    const swept = parseValueList(values.sweep[parameter.name] ?? '', parameter.type);
    if ('error' in swept) {
      errors[`sweep.${parameter.name}`] = swept.error;
    } else if (swept.values !== null) {
      grid[parameter.name] = swept.values;
      continue;
    }
    const text = values.parameters[parameter.name] ?? '';
    if (text.trim() === '' && !(parameter.type === 'str' && parameter.known)) {
      continue; // the notebook's own default stays
    }
    const parsed = parseValue(text, parameter.type);
    if ('error' in parsed) {
      errors[`parameters.${parameter.name}`] = parsed.error;
    } else {
      chosen[parameter.name] = parsed.value;
    }
  }
  const members = gridSize(grid);
  const sweeping = Object.keys(grid).length > 0;
  if (members > maxMembers(options)) {
    errors.members = `${members} members: a sweep has at most ${maxMembers(options)}`;
  }
  let maxParallel: number | null = null;
  if (values.max_parallel.trim() !== '') {
    const parallel = wholeNumber(values.max_parallel, 1, Math.max(1, members), 'At once');
    if (typeof parallel === 'string') {
      errors.max_parallel = parallel;
    } else {
      maxParallel = parallel;
    }
  }
  const mostRetries = limit(options, 'max_retries', MAX_RETRIES);
  const retries = wholeNumber(values.retries || '0', 0, mostRetries, 'Retries');
  if (typeof retries === 'string') {
    errors.retries = retries;
  }
  const outputs = values.outputs
    .split(',')
    .map(o => o.trim())
    .filter(o => o !== '');
  const bad = outputs.find(o => o.startsWith('/') || o.split('/').includes('..'));
  if (bad !== undefined) {
    errors.outputs = `${bad}: outputs are paths inside the run's folder (no "/" first, no "..")`;
  }
  if (Object.keys(errors).length > 0 || !found) {
    return { errors, members };
  }
  const environment = values.environment.trim();
  return {
    members,
    request: {
      path,
      ...(values.name.trim() ? { name: values.name.trim() } : {}),
      parameters: chosen,
      sweep: sweeping ? { grid } : null,
      max_parallel: sweeping ? maxParallel : null,
      resources: {
        site: found.site.name,
        partition: found.partition.name,
        cores: cores as number,
        memory_gb: memory,
        gpus: gpus as number,
        walltime: values.walltime.trim(),
        ...(environment ? { environment } : {})
      },
      outputs,
      retries: retries as number
    }
  };
}

/**
 * Check a re-run's parameters (the only thing a re-run changes) and build them.
 *
 * @param values - the parameters' texts
 * @param parameters - the parameters (known from the earlier run)
 */
export function validateParameters(
  values: Record<string, string>,
  parameters: INotebookParameter[]
): { parameters: Record<string, unknown> } | { errors: Record<string, string> } {
  const chosen: Record<string, unknown> = {};
  const errors: Record<string, string> = {};
  for (const parameter of parameters) {
    const parsed = parseValue(values[parameter.name] ?? '', parameter.type);
    if ('error' in parsed) {
      errors[`parameters.${parameter.name}`] = parsed.error;
    } else {
      chosen[parameter.name] = parsed.value;
    }
  }
  return Object.keys(errors).length > 0 ? { errors } : { parameters: chosen };
}
