/**
 * What the catalogue service answers (through `continuum_lab`'s `catalogue/…` routes), and the
 * API the panel's models use (a seam for tests).
 */

/**
 * The facets a search filters on and counts, in the panel's order.
 */
export const FACETS = ['source', 'kind', 'vo', 'site', 'format'] as const;

/**
 * A facet's name.
 */
export type Facet = (typeof FACETS)[number];

/**
 * The states of a replica; never `available` before it is.
 */
export type ReplicaState = 'available' | 'requested' | 'replicating' | 'unavailable';

/**
 * One copy of an entry's bytes at one place.
 */
export interface IReplica {
  /** The site registry's name of the site holding it (`""`: not at a known site). */
  site: string;
  /** The storage's own name (a Rucio RSE, a harvested root). */
  location: string;
  path: string;
  state: ReplicaState;
  size: number | null;
}

/**
 * One thing a user can find: a dataset, file, table, service or software environment.
 */
export interface IEntry {
  /** `source:identifier`. */
  id: string;
  source: string;
  identifier: string;
  kind: string;
  title: string;
  description: string;
  vo: string;
  visibility: string;
  format: string;
  size: number | null;
  time_start: string | null;
  time_end: string | null;
  sites: string[];
  replicas: IReplica[];
  metadata: Record<string, unknown>;
  /** How to open it: `{language, code}`; empty when the source has no code for it. */
  access: { language?: string; code?: string };
}

/**
 * How one source answered a search.
 */
export interface ISourceStatus {
  name: string;
  ok: boolean;
  latency_ms: number | null;
  message: string;
}

/**
 * One page of results.
 */
export interface ISearchPage {
  entries: IEntry[];
  /** Matches in all (null: unknown). */
  total: number | null;
  /** facet → value → count (when asked). */
  facets: Partial<Record<Facet, Record<string, number>>>;
  sources: ISourceStatus[];
}

/**
 * A search: the text, the selected facet values, a page.
 */
export interface ISearchQuery {
  q: string;
  filters: Partial<Record<Facet, string[]>>;
  offset: number;
  limit: number;
  facets: boolean;
}

/**
 * A site the user may start work on.
 */
export interface ISite {
  name: string;
  label: string;
}

/**
 * The sites the user may use; `known` is false when they could not be asked.
 */
export interface IUsableSites {
  sites: ISite[];
  known: boolean;
  message?: string;
}

/**
 * A *make available* request and its state, as the service says.
 */
export interface IAvailabilityRequest {
  id: string;
  state: ReplicaState | string;
  site: string;
  message: string;
}

/**
 * The states after which a request changes no more.
 */
export const FINAL_REQUEST_STATES: readonly string[] = ['available', 'unavailable', 'failed'];

/**
 * A source's own query: a TAP source's form `{table, ra, dec, radius_deg, time_from, time_to,
 * band_min, band_max}` or `{adql}`, and the rows wanted at most (`maxrec`).
 */
export interface ISourceQuery {
  table?: string;
  adql?: string;
  ra?: number;
  dec?: number;
  radius_deg?: number;
  time_from?: string;
  time_to?: string;
  band_min?: number;
  band_max?: number;
  maxrec?: number;
}

/**
 * A column of a query's answer.
 */
export interface IQueryColumn {
  name: string;
  unit: string;
  datatype: string;
}

/**
 * A source query's answer: at most `maxrec` rows; `truncated` when there were more; the ADQL
 * the service ran.
 */
export interface IQueryAnswer {
  columns: IQueryColumn[];
  rows: unknown[][];
  truncated: boolean;
  message: string;
  adql: string;
}

/**
 * The catalogue routes of `continuum_lab`.
 */
export interface ICatalogueAPI {
  search(query: ISearchQuery): Promise<ISearchPage>;
  /** One entry; its code opens the replica at `site` (the service's choice when empty). */
  entry(id: string, site?: string): Promise<IEntry>;
  sites(): Promise<IUsableSites>;
  makeAvailable(id: string, site: string): Promise<IAvailabilityRequest>;
  request(id: string): Promise<IAvailabilityRequest>;
  /** Run a source's own query (a TAP source's form or ADQL). */
  query(source: string, query: ISourceQuery): Promise<IQueryAnswer>;
}
