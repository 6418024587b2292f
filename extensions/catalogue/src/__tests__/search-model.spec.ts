import { PAGE_SIZE, SearchModel, visibleWindow } from '../search-model';
import { FakeAPI } from './fake-api';

describe('visibleWindow', () => {
  it.each([
    // scrollTop, height, rows, start, end
    [0, 440, 1000, 0, 16],
    [4400, 440, 1000, 95, 116],
    [43_560, 440, 1000, 985, 1000],
    [0, 440, 3, 0, 3],
    [0, 0, 0, 0, 0]
  ])('scrolled to %p in %p px of %p rows renders [%p, %p)', (top, height, count, start, end) => {
    expect(visibleWindow(top, height, 44, count)).toEqual({ start, end });
  });
});

describe('SearchModel', () => {
  beforeEach(() => jest.useFakeTimers());
  afterEach(() => jest.useRealTimers());

  it('searches once the typing pauses, with facet counts on the first page', async () => {
    const api = new FakeAPI();
    const model = new SearchModel(api, 300);
    model.setText('r');
    model.setText('ra');
    model.setText('radio');
    expect(api.calls).toEqual([]);
    jest.advanceTimersByTime(300);
    await model.search(); // what the timer started, awaited
    expect(api.queries.map(q => q.q)).toEqual(['radio', 'radio']);
    expect(api.queries[0]).toEqual({
      q: 'radio',
      filters: {},
      offset: 0,
      limit: PAGE_SIZE,
      facets: true
    });
    expect(model.total).toBe(120);
    expect(model.facets.site).toEqual({ beta: 80, alpha: 40 });
    expect(model.sources.map(s => s.ok)).toEqual([true, false]);
    expect(model.entryAt(0)?.title).toBe('radio 0');
    expect(model.entryAt(PAGE_SIZE)).toBeUndefined(); // not loaded before it is in view
    model.dispose();
  });

  it('loads the pages that come into view, once each', async () => {
    const api = new FakeAPI();
    const model = new SearchModel(api, 0);
    model.setText('hep');
    await model.search();
    await Promise.all([model.ensureRange(40, 110), model.ensureRange(60, 70)]);
    expect(api.queries.slice(1).map(q => [q.offset, q.facets])).toEqual([
      [50, false],
      [100, false]
    ]);
    expect(model.entryAt(119)?.title).toBe('hep 119');
    await model.ensureRange(0, 500); // beyond the total: nothing more
    expect(api.queries).toHaveLength(3);
    model.dispose();
  });

  it('toggles facet values: alternatives within a facet, a fresh first page each time', async () => {
    const api = new FakeAPI();
    const model = new SearchModel(api, 0);
    await model.toggle('site', 'beta');
    await model.toggle('site', 'alpha');
    await model.toggle('kind', 'file');
    expect(model.isSelected('site', 'beta')).toBe(true);
    expect(api.queries.at(-1)).toMatchObject({
      filters: { site: ['beta', 'alpha'], kind: ['file'] },
      offset: 0,
      facets: true
    });
    await model.toggle('site', 'beta');
    expect(model.selected()).toEqual({ site: ['alpha'], kind: ['file'] });
    await model.clearFilters();
    expect(model.selected()).toEqual({});
    model.dispose();
  });

  it('drops the answer of an older search', async () => {
    const api = new FakeAPI();
    const model = new SearchModel(api, 0);
    const releases: (() => void)[] = [];
    api.hold = release => releases.push(release);
    model.setText('old');
    const older = model.search();
    model.setText('new');
    const newer = model.search();
    api.hold = null;
    releases.reverse().forEach(release => release()); // the newer answer first
    await Promise.all([older, newer]);
    expect(model.entryAt(0)?.title).toBe('new 0');
    expect(model.searching).toBe(false);
    model.dispose();
  });

  it('shows the failure and no results', async () => {
    const api = new FakeAPI();
    api.failure = new Error('The catalogue service cannot be reached');
    const model = new SearchModel(api, 0);
    await model.search();
    expect(model.error).toBe('The catalogue service cannot be reached');
    expect(model.total).toBe(0);
    expect(model.answered).toBe(true);
    model.dispose();
  });
});
