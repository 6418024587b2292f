import { RunsModel } from '../runs-model';
import { FakeAPI, run } from './fake-api';

describe('RunsModel', () => {
  it('keeps the runs, the credentials and the refresh interval', async () => {
    const api = new FakeAPI();
    api.state = { runs: [run()], refresh_seconds: 1 };
    const model = new RunsModel(api);
    let changes = 0;
    model.changed.connect(() => (changes += 1));
    await model.refresh();
    expect(model.runs?.map(r => r.id)).toEqual(['r-0123456789ab']);
    expect(model.credentials?.map(c => c.id)).toEqual(['c-1']);
    expect(model.error).toBeNull();
    expect(model.refreshSeconds).toBe(2); // never faster than every 2 s
    expect(changes).toBe(1);
    model.dispose();
  });

  it('shows the service’s failure and keeps the last list', async () => {
    const api = new FakeAPI();
    const model = new RunsModel(api);
    await model.refresh();
    api.failure = new Error('The batch workflows service cannot be reached');
    api.credentialsFailure = new Error('down');
    await model.refresh();
    expect(model.error).toBe('The batch workflows service cannot be reached');
    expect(model.runs).toHaveLength(1);
    expect(model.credentials).toHaveLength(1);
    model.dispose();
  });

  it('refreshes after each action and hands failures to the caller', async () => {
    const api = new FakeAPI();
    const model = new RunsModel(api);
    await model.cancel('r-0123456789ab');
    const again = await model.rerun('r-0123456789ab', { n: 4 });
    await model.revoke('c-1');
    expect(again.based_on).toBe('r-0123456789ab');
    expect(api.calls.filter(c => c !== 'list')).toEqual([
      'cancel r-0123456789ab',
      'rerun r-0123456789ab {"n":4}',
      'revoke c-1'
    ]);
    expect(api.calls.filter(c => c === 'list')).toHaveLength(3);
    api.cancel = async () => {
      throw new Error('not your run');
    };
    await expect(model.cancel('r-0123456789ab')).rejects.toThrow('not your run');
    model.dispose();
  });
});
