/**
 * A panel's button: `data-action` names it (for tests and the browser tests), `onClick` acts.
 *
 * @param label - its text
 * @param className - its classes (`jp-mod-styled`, `jp-mod-warn`, …)
 * @param action - its `data-action`
 * @param onClick - what a click does
 */
export function actionButton(
  label: string,
  className: string,
  action: string,
  onClick: () => void
): HTMLButtonElement {
  const node = document.createElement('button');
  node.type = 'button';
  node.className = className;
  node.textContent = label;
  node.dataset.action = action;
  node.addEventListener('click', onClick);
  return node;
}

/**
 * A duration in a few characters: `45 s`, `12 min`, `3 h 05 min`, `2 d 4 h`; `–` when unknown.
 *
 * @param seconds - whole seconds, or null
 */
export function formatAge(seconds: number | null): string {
  if (seconds === null || !Number.isFinite(seconds) || seconds < 0) {
    return '–';
  }
  const s = Math.floor(seconds);
  if (s < 60) {
    return `${s} s`;
  }
  const minutes = Math.floor(s / 60);
  if (minutes < 60) {
    return `${minutes} min`;
  }
  const hours = Math.floor(minutes / 60);
  if (hours < 24) {
    return `${hours} h ${String(minutes % 60).padStart(2, '0')} min`;
  }
  return `${Math.floor(hours / 24)} d ${hours % 24} h`;
}

/**
 * A table with a header row.
 *
 * @param className - its classes
 * @param titles - the columns' titles
 * @returns the table (add rows to its `tBodies[0]`)
 */
export function tableWithHead(className: string, titles: string[]): HTMLTableElement {
  const table = document.createElement('table');
  table.className = `jp-ContinuumList-table ${className}`;
  const head = table.createTHead().insertRow();
  for (const title of titles) {
    const th = document.createElement('th');
    th.scope = 'col';
    th.textContent = title;
    head.append(th);
  }
  table.createTBody();
  return table;
}

/**
 * What a panel says in place of its list: `asking` before the first answer (nothing when that
 * failed: the error shows), `none` for an empty list, nothing otherwise.
 *
 * @param items - the list, null until the first answer
 * @param error - the last error
 * @param asking - the text while waiting
 * @param none - the text for an empty list
 */
export function listNote(
  items: readonly unknown[] | null,
  error: string | null,
  asking: string,
  none: string
): string {
  if (items === null) {
    return error ? '' : asking;
  }
  return items.length === 0 ? none : '';
}

/**
 * Bytes in binary units with one decimal: `512.0 MiB`, `2.0 GiB`; `–` when unknown.
 *
 * @param bytes - a byte count, or null
 */
export function formatBytes(bytes: number | null | undefined): string {
  if (bytes === null || bytes === undefined || !Number.isFinite(bytes) || bytes < 0) {
    return '–';
  }
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit += 1;
  }
  return unit === 0 ? `${value} B` : `${value.toFixed(1)} ${units[unit]}`;
}
