import {
  AvailabilityFollower,
  availabilityTargets,
  copyText,
  defaultSite,
  enabledActions,
  requestLabel,
  startNearUrl,
  startSite
} from '../actions';
import { IUsableSites } from '../tokens';
import { entry, FakeAPI } from './fake-api';

const both: IUsableSites = {
  sites: [
    { name: 'alpha', label: 'Alpha' },
    { name: 'beta', label: 'Beta' }
  ],
  known: true
};
const alphaOnly: IUsableSites = { sites: [{ name: 'alpha', label: 'Alpha' }], known: true };
const unknown: IUsableSites = { sites: [], known: false };

describe('the entry view’s actions', () => {
  const atBeta = entry();
  const twice = entry({
    replicas: [
      { site: 'beta', location: 'radio', path: '/b/x.nc', state: 'available', size: 1 },
      { site: 'alpha', location: 'radio', path: '/a/x.nc', state: 'replicating', size: 1 }
    ]
  });

  it.each([
    [
      'both sites',
      atBeta,
      both,
      { insert: true, copy: true, makeAvailable: true, startNear: true }
    ],
    [
      'HEP only',
      atBeta,
      alphaOnly,
      { insert: true, copy: true, makeAvailable: true, startNear: false }
    ],
    [
      'unknown sites',
      atBeta,
      unknown,
      { insert: true, copy: true, makeAvailable: false, startNear: false }
    ],
    [
      'copy under way',
      twice,
      both,
      { insert: true, copy: true, makeAvailable: false, startNear: true }
    ],
    [
      'no code',
      entry({ access: {} }),
      both,
      { insert: false, copy: true, makeAvailable: true, startNear: true }
    ]
  ])('are enabled as they can act: %s', (_, item, usable, expected) => {
    expect(enabledActions(item, usable)).toEqual(expected);
  });

  it('offer usable sites without a replica, and start where data and access meet', () => {
    expect(availabilityTargets(atBeta, both)).toEqual(['alpha']);
    expect(availabilityTargets(twice, both)).toEqual([]);
    expect(startSite(twice, alphaOnly)).toBeNull(); // alpha's copy is not there yet
    expect(startSite(twice, both)).toBe('beta');
    expect(defaultSite(twice, alphaOnly)).toBe('beta'); // a replica to show, if not to use
    expect(copyText(twice, 'alpha')).toBe('/a/x.nc');
    expect(copyText(entry({ replicas: [] }), 'beta')).toBe('beta/radio/obs-0001.fits');
  });

  it('open the spawn page of a named server near the data, preselected', () => {
    expect(startNearUrl('/hub/', 'alice', 'beta', twice)).toBe(
      '/hub/spawn/alice/near-beta?site=beta&data_sites=beta&datasets=demo%3Abeta%2Fradio%2Fobs-0001.fits'
    );
  });
});

function said(follower: AvailabilityFollower): string {
  return follower.request ? requestLabel(follower.request) : '';
}

describe('AvailabilityFollower', () => {
  beforeEach(() => jest.useFakeTimers());
  afterEach(() => jest.useRealTimers());

  it('follows the request and never says done before the service does', async () => {
    const api = new FakeAPI();
    api.states = ['replicating', 'available'];
    const follower = new AvailabilityFollower(api, 5);
    await follower.start('demo:x', 'alpha');
    expect(said(follower)).toBe('Requested a copy at alpha…');
    expect(follower.following).toBe(true);
    await follower.poll();
    expect(said(follower)).toBe('Replicating to alpha…');
    await follower.poll();
    expect(said(follower)).toBe('Available at alpha.');
    expect(follower.following).toBe(false);
    expect(api.calls).toEqual(['make-available demo:x alpha', 'request q-1', 'request q-1']);
    follower.dispose();
  });

  it('asks again on a timer until the state is final', async () => {
    const api = new FakeAPI();
    api.states = ['replicating'];
    const follower = new AvailabilityFollower(api, 5);
    await follower.start('demo:x', 'alpha');
    jest.advanceTimersByTime(5000);
    await Promise.resolve();
    expect(api.calls).toContain('request q-1');
    follower.dispose();
    const before = api.calls.length;
    jest.advanceTimersByTime(60_000);
    expect(api.calls).toHaveLength(before);
  });
});
