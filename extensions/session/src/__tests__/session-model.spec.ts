import { SessionModel } from '../session-model';
import { IJobInfo, IWalltimeWarning } from '../tokens';

function jobInfo(overrides: Partial<IJobInfo> = {}): IJobInfo {
  return {
    source: 'hub',
    site: 'alpha',
    site_label: 'Alpha HPC centre (CPU)',
    partition: 'interactive',
    job_id: '42',
    state: 'running',
    node: 'alpha-node1',
    cores: 2,
    memory_gb: 4,
    gpus: 0,
    environment: 'default',
    walltime_minutes: 60,
    start_time: '2026-11-21T06:00:00Z',
    end_time: '2026-11-21T07:00:00Z',
    remaining_seconds: 16 * 60,
    now: '2026-11-21T06:44:00Z',
    settings: { warning_minutes: [15, 5], refresh_seconds: 60 },
    ...overrides
  };
}

describe('SessionModel', () => {
  let now = 0;
  const clock = (): number => now;

  beforeEach(() => {
    now = 1_000_000;
  });

  it('counts down and warns at each threshold once', async () => {
    const model = new SessionModel(async () => jobInfo(), clock);
    const warnings: IWalltimeWarning[] = [];
    model.warning.connect((_, w) => warnings.push(w));
    await model.refresh();
    expect(model.info?.job_id).toBe('42');
    expect(model.remainingSeconds).toBe(16 * 60);
    expect(warnings).toEqual([]);

    now += 60_000;
    model.tick();
    expect(model.remainingSeconds).toBe(15 * 60);
    expect(warnings.map(w => w.minutes)).toEqual([15]);

    now += 10 * 60_000;
    model.tick();
    expect(warnings.map(w => w.minutes)).toEqual([15, 5]);
    model.tick();
    expect(warnings).toHaveLength(2);
    model.dispose();
  });

  it('refreshes after the configured interval', async () => {
    const fetcher = jest.fn(async () => jobInfo());
    const model = new SessionModel(fetcher, clock);
    await model.refresh();
    now += 59_000;
    model.tick();
    expect(fetcher).toHaveBeenCalledTimes(1);
    now += 1_000;
    model.tick();
    expect(fetcher).toHaveBeenCalledTimes(2);
    model.dispose();
  });

  it('keeps the last answer and reports the error when a refresh fails', async () => {
    let fail = false;
    const model = new SessionModel(async () => {
      if (fail) {
        throw new Error('hub down');
      }
      return jobInfo();
    }, clock);
    await model.refresh();
    fail = true;
    await model.refresh();
    expect(model.info?.site).toBe('alpha');
    expect(model.error).toBe('hub down');
    model.dispose();
  });

  it('knows no remaining time when the end is unknown', async () => {
    const model = new SessionModel(
      async () => jobInfo({ remaining_seconds: null, end_time: null }),
      clock
    );
    await model.refresh();
    expect(model.remainingSeconds).toBeNull();
    model.dispose();
  });
});
