/**
 * Our panels' icons. Their paths carry `jp-icon3` so that the theme recolours them (light and
 * dark); each bundled copy of this module finds the one icon registered under its name.
 */

import { LabIcon } from '@jupyterlab/ui-components';

const svg = (body: string): string =>
  `<svg xmlns="http://www.w3.org/2000/svg" width="16" height="16" viewBox="0 0 24 24">` +
  `<g class="jp-icon3" fill="#616161">${body}</g></svg>`;

/** Dask clusters: a scheduler node linked to three workers. */
export const clustersIcon = new LabIcon({
  name: 'continuum-hub:clusters',
  svgstr: svg(
    '<circle cx="12" cy="5" r="3"/><circle cx="5" cy="18" r="3"/><circle cx="12" cy="18" r="3"/>' +
      '<circle cx="19" cy="18" r="3"/><path d="M11 8h2v7h-2zM6.2 15.6l4.9-7.2 1.6 1.1-4.9 7.2zM17.8 15.6l-4.9-7.2-1.6 1.1 4.9 7.2z"/>'
  )
});

/** A new Dask cluster: the clusters icon's scheduler with a plus. */
export const newClusterIcon = new LabIcon({
  name: 'continuum-hub:new-cluster',
  svgstr: svg(
    '<circle cx="5" cy="18" r="3"/><circle cx="12" cy="18" r="3"/>' +
      '<path d="M6.2 15.6l4.9-7.2 1.6 1.1-4.9 7.2zM11 8h2v7h-2z"/>' +
      '<path d="M17 2h2v4h4v2h-4v4h-2V8h-4V6h4z"/>'
  )
});

/** This session's batch job: a clock over a server rack. */
export const sessionIcon = new LabIcon({
  name: 'continuum-hub:session',
  svgstr: svg(
    '<path d="M3 14h18v8H3zm2 2v4h14v-4zm2 1h2v2H7z"/>' +
      '<path d="M12 1a6 6 0 1 1 0 12 6 6 0 0 1 0-12zm0 2a4 4 0 1 0 0 8 4 4 0 0 0 0-8zm-1 1h2v3h2v2h-4z"/>'
  )
});

/** Batch runs: a stack of jobs with a play mark. */
export const batchRunsIcon = new LabIcon({
  name: 'continuum-hub:batch-runs',
  svgstr: svg('<path d="M3 3h14v2H3zm0 4h14v2H3zm0 4h8v2H3z"/><path d="M14 12l8 5-8 5z"/>')
});

/** The data catalogue: an open book with a magnifier. */
export const catalogueIcon = new LabIcon({
  name: 'continuum-hub:catalogue',
  svgstr: svg(
    '<path d="M2 4h7a3 3 0 0 1 3 3v12a2 2 0 0 0-2-2H2zm2 2v9h6V7a1 1 0 0 0-1-1z"/>' +
      '<path d="M17 9a4 4 0 0 1 3.3 6.3l2.7 2.7-1.4 1.4-2.7-2.7A4 4 0 1 1 17 9zm0 2a2 2 0 1 0 0 4 2 2 0 0 0 0-4z"/>'
  )
});

/** Usage: three bars of a chart over a baseline. */
export const usageIcon = new LabIcon({
  name: 'continuum-hub:usage',
  svgstr: svg('<path d="M3 20h18v2H3z"/><path d="M5 12h3v7H5zm5.5-8h3v15h-3zM16 8h3v11h-3z"/>')
});

/** Workshops: a teaching board on an easel. */
export const workshopIcon = new LabIcon({
  name: 'continuum-hub:workshop',
  svgstr: svg(
    '<path d="M2 3h20v13H2zm2 2v9h16V5z"/><path d="M11 16h2v3h-2zM7.4 22l3-4h3.2l3 4h-2.5l-2.1-2.8-2.1 2.8z"/>' +
      '<path d="M6 8h8v2H6zm0 3h5v2H6z"/>'
  )
});
