import { ClustersModel } from '../clusters-model';
import { cluster, FakeAPI } from './fake-api';

describe('ClustersModel', () => {
  beforeEach(() => {
    jest.useFakeTimers();
  });
  afterEach(() => {
    jest.useRealTimers();
  });

  it('lists and refreshes at the interval the server asks for', async () => {
    const api = new FakeAPI();
    api.state = { clusters: [cluster()], refresh_seconds: 30 };
    const model = new ClustersModel(api);
    let changes = 0;
    model.changed.connect(() => (changes += 1));
    model.start();
    await jest.advanceTimersByTimeAsync(0);
    expect(model.clusters?.map(c => c.name)).toEqual(['a1b2c3d4e5f6a7b8c9d0']);
    expect(model.refreshSeconds).toBe(30);
    expect(changes).toBe(1);
    await jest.advanceTimersByTimeAsync(29_000);
    expect(api.calls).toEqual(['list']);
    await jest.advanceTimersByTimeAsync(1_000);
    expect(api.calls).toEqual(['list', 'list']);
    model.dispose();
    await jest.advanceTimersByTimeAsync(60_000);
    expect(api.calls).toEqual(['list', 'list']);
  });

  it('keeps the last list and says why when the gateway is unreachable', async () => {
    const api = new FakeAPI();
    const model = new ClustersModel(api);
    await model.refresh();
    api.failure = new Error('The Dask Gateway at http://gw cannot be reached: refused');
    await model.refresh();
    expect(model.error).toContain('cannot be reached');
    expect(model.clusters).toHaveLength(1);
    api.failure = null;
    await model.refresh();
    expect(model.error).toBeNull();
  });

  it('refreshes after every action and passes the gateway note on', async () => {
    const api = new FakeAPI();
    const model = new ClustersModel(api);
    await model.scale('c1', 5);
    expect(model.note).toBe('Scaling to 3 instead.');
    await model.scale('c1', 2);
    expect(model.note).toBeNull();
    expect(await model.create()).toBe('new');
    await model.stop('c1');
    await jest.advanceTimersByTimeAsync(0);
    expect(api.calls).toEqual([
      'scale c1 5',
      'list',
      'scale c1 2',
      'list',
      'create',
      'list',
      'stop c1',
      'list'
    ]);
  });

  it('lets a failed action reach the caller without hiding the list', async () => {
    const api = new FakeAPI();
    const model = new ClustersModel(api);
    await model.refresh();
    api.failure = new Error('Dask Gateway: Cluster c1 not found');
    await expect(model.stop('c1')).rejects.toThrow('not found');
    expect(model.clusters).toHaveLength(1);
  });
});
