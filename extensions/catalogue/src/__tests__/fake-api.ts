import {
  IAvailabilityRequest,
  ICatalogueAPI,
  IEntry,
  IQueryAnswer,
  ISearchPage,
  ISearchQuery,
  ISourceQuery,
  IUsableSites
} from '../tokens';

/**
 * An entry as the service sends it (fields overridable).
 */
export function entry(extra: Partial<IEntry> = {}): IEntry {
  return {
    id: 'demo:beta/radio/obs-0001.fits',
    source: 'demo',
    identifier: 'beta/radio/obs-0001.fits',
    kind: 'file',
    title: 'Radio observation 1',
    description: 'A FITS image',
    vo: 'vo.radio.example',
    visibility: 'public',
    format: 'fits',
    size: 2_500_000,
    time_start: null,
    time_end: null,
    sites: ['beta'],
    replicas: [
      {
        site: 'beta',
        location: 'radio',
        path: '/data/beta/obs-0001.fits',
        state: 'available',
        size: 2_500_000
      }
    ],
    metadata: { TELESCOP: 'demo' },
    access: { language: 'python', code: "fits.open('/data/beta/obs-0001.fits')" },
    ...extra
  };
}

/**
 * The catalogue routes as a fake: `total` numbered entries; records each call.
 */
export class FakeAPI implements ICatalogueAPI {
  total = 120;
  calls: string[] = [];
  queries: ISearchQuery[] = [];
  states = ['requested', 'replicating', 'replicating'];
  usable: IUsableSites = {
    sites: [
      { name: 'alpha', label: 'Alpha' },
      { name: 'beta', label: 'Beta' }
    ],
    known: true
  };
  failure: Error | null = null;
  /** The source queries asked, and what the next one answers (an error: it is refused). */
  sourceQueries: [string, ISourceQuery][] = [];
  queryAnswer: IQueryAnswer | Error = {
    columns: [
      { name: 'obs_id', unit: '', datatype: 'char' },
      { name: 'ra', unit: 'deg', datatype: 'double' }
    ],
    rows: [
      ['obs-1', 10.5],
      ['obs-2', 11.25]
    ],
    truncated: false,
    message: '2 rows',
    adql: 'SELECT TOP 101 * FROM radio.observations'
  };
  /** Entries `entry()` answers by id (others: the default entry with that id). */
  entries: Record<string, IEntry> = {};
  /** Answers held back until released (to test stale answers). */
  hold: ((release: () => void) => void) | null = null;

  async search(query: ISearchQuery): Promise<ISearchPage> {
    this.queries.push(query);
    this.calls.push(`search ${query.q} ${query.offset}`);
    if (this.hold) {
      await new Promise<void>(resolve => this.hold?.(resolve));
    }
    if (this.failure) {
      throw this.failure;
    }
    const end = Math.min(this.total, query.offset + query.limit);
    const entries = [];
    for (let i = query.offset; i < end; i++) {
      entries.push(entry({ id: `demo:${query.q}-${i}`, title: `${query.q} ${i}` }));
    }
    return {
      entries,
      total: this.total,
      facets: query.facets ? { site: { beta: 80, alpha: 40 }, kind: { file: 120 } } : {},
      sources: [
        { name: 'demo', ok: true, latency_ms: 12, message: '' },
        { name: 'tap', ok: false, latency_ms: null, message: 'timed out after 5 s' }
      ]
    };
  }

  async entry(id: string, site?: string): Promise<IEntry> {
    this.calls.push(`entry ${id} ${site ?? ''}`);
    return this.entries[id] ?? entry({ id });
  }

  async sites(): Promise<IUsableSites> {
    return this.usable;
  }

  async makeAvailable(id: string, site: string): Promise<IAvailabilityRequest> {
    this.calls.push(`make-available ${id} ${site}`);
    return { id: 'q-1', state: 'requested', site, message: '' };
  }

  async request(id: string): Promise<IAvailabilityRequest> {
    this.calls.push(`request ${id}`);
    const state = this.states.shift() ?? 'replicating';
    return { id, state, site: 'alpha', message: '' };
  }

  async query(source: string, query: ISourceQuery): Promise<IQueryAnswer> {
    this.sourceQueries.push([source, query]);
    if (this.queryAnswer instanceof Error) {
      throw this.queryAnswer;
    }
    return this.queryAnswer;
  }
}

/**
 * A TAP source's table entry as the service sends it.
 */
export function tableEntry(extra: Partial<IEntry> = {}): IEntry {
  return entry({
    id: 'radio-tap:radio.observations',
    source: 'radio-tap',
    identifier: 'radio.observations',
    kind: 'table',
    title: 'radio.observations',
    format: 'votable',
    size: null,
    sites: [],
    replicas: [],
    metadata: {
      service: 'http://tap.example.org/tap',
      columns: ['obs_id', 'ra', 'dec'],
      form_fields: ['band_max', 'band_min', 'dec', 'ra', 'time_max', 'time_min'],
      example_query: 'SELECT TOP 100 * FROM radio.observations',
      maxrec: 500
    },
    access: { language: 'python', code: 'import pyvo' },
    ...extra
  });
}
