import { ParameterType } from './tokens';

/**
 * A value typed in the dialog, or why it is not one of its kind.
 */
export type Parsed = { value: unknown } | { error: string };

/**
 * Read one value typed for a parameter of `type`.
 *
 * Numbers and booleans are checked; strings are taken as typed (quotes, `;`, `$(…)` are
 * characters like any other: parameters reach the job as JSON, never through a shell);
 * lists and mappings are JSON; an untyped parameter takes JSON when the text is JSON, else the
 * text itself.
 *
 * @param text - what the user typed
 * @param type - the parameter's kind
 */
export function parseValue(text: string, type: ParameterType): Parsed {
  const trimmed = text.trim();
  switch (type) {
    case 'int':
      return /^[-+]?\d+$/.test(trimmed) && Number.isSafeInteger(Number(trimmed))
        ? { value: Number(trimmed) }
        : { error: `"${text}" is not a whole number` };
    case 'float': {
      const number = Number(trimmed);
      return trimmed !== '' && Number.isFinite(number)
        ? { value: number }
        : { error: `"${text}" is not a number` };
    }
    case 'bool': {
      const lower = trimmed.toLowerCase();
      if (lower === 'true' || lower === 'false') {
        return { value: lower === 'true' };
      }
      return { error: `"${text}" is not true or false` };
    }
    case 'str':
      return { value: text };
    case 'list':
    case 'dict': {
      const parsed = parseJSON(trimmed);
      const ok =
        parsed !== undefined &&
        (type === 'list'
          ? Array.isArray(parsed)
          : typeof parsed === 'object' && parsed !== null && !Array.isArray(parsed));
      return ok ? { value: parsed } : { error: `"${text}" is not a JSON ${type}` };
    }
    default: {
      const parsed = parseJSON(trimmed);
      return { value: parsed === undefined ? text : parsed };
    }
  }
}

/**
 * Read the values of a sweep typed for one parameter: comma-separated (`1, 2, 4`), or a JSON
 * list (`["a, b", "c"]`) when values contain commas or are lists themselves.
 *
 * @param text - what the user typed; empty means "not swept"
 * @param type - the parameter's kind
 * @returns the values, null when not swept, or an error
 */
export function parseValueList(
  text: string,
  type: ParameterType
): { values: unknown[] | null } | { error: string } {
  const trimmed = text.trim();
  if (trimmed === '') {
    return { values: null };
  }
  if (trimmed.startsWith('[') && (type !== 'list' || trimmed.startsWith('[['))) {
    const parsed = parseJSON(trimmed);
    if (!Array.isArray(parsed) || parsed.length === 0) {
      return { error: `"${text}" is not a JSON list of values` };
    }
    for (const item of parsed) {
      const again = parseValue(typeof item === 'string' ? item : JSON.stringify(item), type);
      if ('error' in again) {
        return again;
      }
    }
    return { values: parsed };
  }
  const values: unknown[] = [];
  for (const part of trimmed.split(',')) {
    const parsed = parseValue(type === 'str' ? part.trim() : part, type);
    if ('error' in parsed) {
      return parsed;
    }
    values.push(parsed.value);
  }
  return { values };
}

/**
 * How many members a grid makes: the product of its value counts (1 for an empty grid).
 *
 * @param grid - the values of each swept parameter
 */
export function gridSize(grid: Record<string, unknown[]>): number {
  return Object.values(grid).reduce((product, values) => product * values.length, 1);
}

/**
 * A value shown in a text input: strings as they are, anything else as JSON.
 *
 * @param value - the value
 */
export function valueText(value: unknown): string {
  if (typeof value === 'string') {
    return value;
  }
  return value === undefined || value === null ? '' : JSON.stringify(value);
}

/**
 * The kind of input for a JSON value (for parameters known only by their values, e.g. a
 * re-run's).
 *
 * @param value - the value
 */
export function typeOf(value: unknown): ParameterType {
  if (typeof value === 'boolean') {
    return 'bool';
  }
  if (typeof value === 'number') {
    return Number.isInteger(value) ? 'int' : 'float';
  }
  if (typeof value === 'string') {
    return 'str';
  }
  if (Array.isArray(value)) {
    return 'list';
  }
  return typeof value === 'object' && value !== null ? 'dict' : 'any';
}

function parseJSON(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}
