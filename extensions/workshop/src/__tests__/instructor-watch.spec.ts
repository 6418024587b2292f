import { InstructorWatch, MIN_GAP_SECONDS, RECHECK_SECONDS } from '../instructor-watch';

/** The hub's answer to "does this user instruct an event?", and how often it was asked. */
class StandIn {
  instructs = false;
  failing = false;
  asked = 0;
  check = async (): Promise<boolean> => {
    this.asked += 1;
    if (this.failing) {
      throw new Error('The hub cannot be reached');
    }
    return this.instructs;
  };
}

/** Let the check's promise chain settle (fake timers leave promises alone). */
async function settled(): Promise<void> {
  for (let i = 0; i < 5; i++) {
    await Promise.resolve();
  }
}

function focus(): void {
  window.dispatchEvent(new Event('focus'));
}

function visibility(state: 'visible' | 'hidden'): void {
  Object.defineProperty(document, 'visibilityState', { value: state, configurable: true });
  document.dispatchEvent(new Event('visibilitychange'));
}

describe('InstructorWatch', () => {
  beforeEach(() => jest.useFakeTimers());
  afterEach(() => {
    jest.useRealTimers();
    visibility('visible');
  });

  it('adds the panel when an event appears while the lab is open, without a reload', async () => {
    const hub = new StandIn();
    let found = 0;
    const watch = new InstructorWatch(hub.check, () => (found += 1));
    await settled();
    expect(hub.asked).toBe(1); // at start
    expect(found).toBe(0);

    focus(); // back at once: not asked again so soon
    await settled();
    expect(hub.asked).toBe(1);

    // the instructor made an event on the hub's page and comes back to the lab's tab
    hub.instructs = true;
    jest.advanceTimersByTime(MIN_GAP_SECONDS * 1000);
    visibility('visible');
    await settled();
    expect(hub.asked).toBe(2);
    expect(found).toBe(1);
    expect(watch.isDisposed).toBe(true);

    // found once: no more questions
    focus();
    jest.advanceTimersByTime(RECHECK_SECONDS * 1000 * 3);
    await settled();
    expect(hub.asked).toBe(2);
    expect(found).toBe(1);
  });

  it('asks every few minutes while the lab stays in view, and not for a hidden tab', async () => {
    const hub = new StandIn();
    let found = 0;
    const watch = new InstructorWatch(hub.check, () => (found += 1), { periodSeconds: 60 });
    await settled();
    jest.advanceTimersByTime(60_000);
    await settled();
    expect(hub.asked).toBe(2);

    jest.advanceTimersByTime(MIN_GAP_SECONDS * 1000);
    visibility('hidden'); // leaving the tab is no reason to ask
    await settled();
    expect(hub.asked).toBe(2);

    hub.instructs = true; // made an event's instructor by someone else
    jest.advanceTimersByTime(60_000);
    await settled();
    expect(found).toBe(1);
    expect(watch.isDisposed).toBe(true);
  });

  it('counts a failed check as no and asks again; joins a check under way', async () => {
    const hub = new StandIn();
    hub.failing = true;
    let found = 0;
    const watch = new InstructorWatch(hub.check, () => (found += 1));
    await settled();
    expect(found).toBe(0);
    expect(watch.isDisposed).toBe(false);

    hub.failing = false;
    hub.instructs = true;
    const both = [watch.check(), watch.check()];
    expect(await Promise.all(both)).toEqual([true, true]);
    expect(hub.asked).toBe(2);
    expect(found).toBe(1);
    watch.dispose();
  });
});
