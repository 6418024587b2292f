import { postJSON, requestAPI } from '@continuum-hub/common';
import { URLExt } from '@jupyterlab/coreutils';

import {
  FACETS,
  IAvailabilityRequest,
  ICatalogueAPI,
  IEntry,
  IQueryAnswer,
  ISearchPage,
  ISearchQuery,
  ISourceQuery,
  IUsableSites
} from './tokens';

/**
 * The query string of a search: `q`, each selected facet value as a repeated parameter, the
 * page, and `facets=1` when counts are wanted.
 *
 * @param query - the search
 */
export function searchParameters(query: ISearchQuery): string {
  const parts: [string, string][] = [['q', query.q]];
  for (const facet of FACETS) {
    for (const value of query.filters[facet] ?? []) {
      parts.push([facet, value]);
    }
  }
  parts.push(['offset', String(query.offset)], ['limit', String(query.limit)]);
  if (query.facets) {
    parts.push(['facets', '1']);
  }
  return parts.map(([k, v]) => `${k}=${encodeURIComponent(v)}`).join('&');
}

/**
 * The catalogue routes of `continuum_lab` (they ask the hub's catalogue service for us).
 */
export const catalogueAPI: ICatalogueAPI = {
  search: query => requestAPI<ISearchPage>(`catalogue/search?${searchParameters(query)}`),
  entry: (id, site) =>
    requestAPI<IEntry>(
      `catalogue/entry${URLExt.objectToQueryString(site ? { id, site } : { id })}`
    ),
  sites: () => requestAPI<IUsableSites>('catalogue/sites'),
  makeAvailable: (id, site) =>
    requestAPI<IAvailabilityRequest>('catalogue/make-available', postJSON({ id, site })),
  request: id =>
    requestAPI<IAvailabilityRequest>(`catalogue/request${URLExt.objectToQueryString({ id })}`),
  query: (source: string, query: ISourceQuery) =>
    requestAPI<IQueryAnswer>('catalogue/query', postJSON({ source, query }))
};
