import { absoluteTime } from '@continuum-hub/common';

import { SessionModel } from '../session-model';
import { SessionPanel } from '../session-panel';
import { SessionStatusItem } from '../status-item';
import { IJobInfo } from '../tokens';

function jobInfo(overrides: Partial<IJobInfo> = {}): IJobInfo {
  return {
    source: 'hub',
    site: 'beta',
    site_label: 'Beta GPU centre',
    partition: 'gpu',
    job_id: '7',
    state: 'running',
    node: 'beta-node1',
    cores: 4,
    memory_gb: 16,
    gpus: 1,
    environment: 'default',
    walltime_minutes: 30,
    start_time: '2026-11-21T06:00:00Z',
    end_time: '2026-11-21T06:30:00Z',
    remaining_seconds: 20 * 60,
    now: '2026-11-21T06:10:00Z',
    settings: { warning_minutes: [15, 5], refresh_seconds: 60 },
    ...overrides
  };
}

describe('SessionStatusItem', () => {
  it('shows site · partition · job · time left, and urgency', async () => {
    let now = 0;
    const model = new SessionModel(
      async () => jobInfo(),
      () => now
    );
    const clicks: number[] = [];
    const item = new SessionStatusItem(model, () => clicks.push(1));
    item.render();
    expect(item.node.textContent).toBe('Job: …');

    await model.refresh();
    item.render();
    expect(item.node.textContent).toBe('beta · gpu · job 7 · 20:00 left');
    expect(item.node.dataset.jobId).toBe('7');
    expect(item.hasClass('jp-mod-soon')).toBe(false);

    now += 6 * 60_000;
    item.render();
    expect(item.hasClass('jp-mod-soon')).toBe(true);
    now += 10 * 60_000;
    item.render();
    expect(item.hasClass('jp-mod-urgent')).toBe(true);

    item.node.click();
    expect(clicks).toHaveLength(1);
    item.dispose();
    model.dispose();
  });

  it('says so when the server extension cannot be reached', async () => {
    const model = new SessionModel(async () => {
      throw new Error('404');
    });
    const item = new SessionStatusItem(model, () => undefined);
    await model.refresh();
    item.render();
    expect(item.node.textContent).toBe('Job: unavailable');
    model.dispose();
  });
});

describe('SessionPanel', () => {
  // only the clock is fake: the model's promises and timers run as usual
  beforeEach(() =>
    jest.useFakeTimers({
      now: Date.parse('2026-11-21T06:10:00Z'),
      doNotFake: ['nextTick', 'queueMicrotask', 'setImmediate', 'setTimeout', 'setInterval']
    })
  );
  afterEach(() => jest.useRealTimers());

  it('lists the job details and wires the buttons', async () => {
    const model = new SessionModel(
      async () => jobInfo({ source: 'environment' }),
      () => 0
    );
    const calls: string[] = [];
    const panel = new SessionPanel(model, {
      controlPanel: () => calls.push('control'),
      stopServer: () => calls.push('stop')
    });
    await model.refresh();
    panel.render();
    const field = (name: string): string | null | undefined =>
      panel.node.querySelector(`dd[data-field="${name}"]`)?.textContent;
    expect(field('site')).toBe('Beta GPU centre (beta)');
    expect(field('job-id')).toBe('7');
    expect(field('gpus')).toBe('1');
    expect(field('memory')).toBe('16 GB');
    expect(field('remaining')).toBe('20:00');
    // relative to the browser's clock (here the job's `now`), the absolute time on hover
    expect(field('start')).toBe('10 minutes ago');
    expect(field('end')).toBe('in 20 minutes');
    const start = panel.node.querySelector<HTMLElement>('dd[data-field="start"]');
    expect(start?.title).toBe(absoluteTime('2026-11-21T06:00:00Z'));
    expect(panel.node.textContent).toContain('The hub could not be asked');

    const buttons = Array.from(panel.node.querySelectorAll('button'));
    buttons.forEach(b => b.click());
    expect(calls).toEqual(['control', 'stop']);
    panel.dispose();
    model.dispose();
  });
});
