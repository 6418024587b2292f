import { Widget } from '@lumino/widgets';

import { InstructorModel } from '../instructor-model';
import { InstructorPanel } from '../instructor-panel';
import { IEventsAnswer, IWorkshopEvent } from '../tokens';
import { event, one, recorder, row } from './fixtures';

/** The hub's events route: answers `events` and counts the questions. */
class StandIn {
  events: IWorkshopEvent[] = [];
  asked = 0;
  fetch = async (): Promise<IEventsAnswer> => {
    this.asked += 1;
    return { events: JSON.parse(JSON.stringify(this.events)), refresh_seconds: 10 };
  };
}

/**
 * A panel in the page (focus needs it) over `hub`, after its first answer; its actions are
 * recorded, then sent through the model as the plugin's are (each refreshes after it).
 */
async function shown(hub: StandIn, failure = '') {
  const model = new InstructorModel(hub.fetch, async () => {
    if (failure) {
      throw new Error(failure);
    }
    return {};
  });
  const actions = recorder();
  const record = actions.event;
  actions.event = async (ev, action, text) => {
    await record(ev, action, text);
    await model.run({ event: ev.id, action, text });
  };
  const panel = new InstructorPanel(model, actions);
  Widget.attach(panel, document.body);
  await model.refresh();
  return { model, panel, actions };
}

/** Let the promises queued by a click (an action, then its refresh) settle. */
async function settled(): Promise<void> {
  for (let i = 0; i < 5; i++) {
    await new Promise(resolve => setTimeout(resolve, 0));
  }
}

describe('the refresh of the Workshops panel', () => {
  afterEach(() => {
    document.body.replaceChildren();
  });

  it('updates in place: the button the keyboard is on keeps the focus', async () => {
    const hub = new StandIn();
    hub.events = [event([row('bob'), row('carol', { state: 'queued' }), row('dave')])];
    const { model, panel } = await shown(hub);
    const dave = one(panel.node, 'tr[data-user="dave"] button[data-action="open"]');
    dave.focus();
    const start = one(panel.node, 'button[data-action="start"]');

    // carol's server runs now, erin joined, bob left
    hub.events = [
      event([row('carol'), row('dave', { state: 'idle', detail: '12 min' }), row('erin')])
    ];
    await model.refresh();
    model.dispose();
    expect(document.activeElement).toBe(dave);
    expect(dave.isConnected).toBe(true);
    expect(one(panel.node, 'button[data-action="start"]')).toBe(start);
    const rows = [...panel.node.querySelectorAll<HTMLTableRowElement>('tbody tr')];
    expect(rows.map(r => r.dataset.user)).toEqual(['carol', 'dave', 'erin']);
    expect(one(rows[1], 'td[data-field="state"]').textContent).toBe('idle 12 min');
    expect(rows.map(r => r.querySelector('button[data-action="open"]') !== null)).toEqual([
      true,
      true,
      true
    ]);
    expect(one(panel.node, '.jp-ContinuumWorkshop-facts').textContent).toContain('3 of 20 seats');
    panel.dispose();
  });

  it('keeps a message being written and pauses while the form is open', async () => {
    const hub = new StandIn();
    hub.events = [event([row('bob')])];
    const { model, panel, actions } = await shown(hub);
    one(panel.node, 'button[data-action="message"]').click();
    const text = one(panel.node, 'textarea[name="message"]') as HTMLTextAreaElement;
    expect(document.activeElement).toBe(text);
    text.value = 'Please open notebook 2';

    // the periodic refresh while the instructor writes: nothing asked, nothing lost
    hub.events = [event([row('bob'), row('carol')])];
    await model.refresh();
    expect(hub.asked).toBe(1);
    expect(document.activeElement).toBe(text);
    expect(text.value).toBe('Please open notebook 2');
    expect(panel.node.querySelectorAll('tbody tr')).toHaveLength(1);

    // an action in between still refreshes, around the form
    one(panel.node, 'button[data-action="push"]').click();
    await settled();
    expect(hub.asked).toBe(2);
    expect(panel.node.querySelectorAll('tbody tr')).toHaveLength(2);
    expect(one(panel.node, 'textarea[name="message"]')).toBe(text);
    expect(text.value).toBe('Please open notebook 2');

    // sending clears and closes the form; the refresh resumes at once
    one(panel.node, 'button[data-action="send"]').click();
    await settled();
    expect(actions.calls).toEqual([
      'push 0123456789ab',
      'message 0123456789ab Please open notebook 2'
    ]);
    expect(text.value).toBe('');
    expect(one(panel.node, 'form.jp-ContinuumWorkshop-compose').hidden).toBe(true);
    expect(model.editing).toBe(false);
    expect(hub.asked).toBe(3);
    model.dispose();
    panel.dispose();
  });

  it('keeps the text when sending fails, and shows why', async () => {
    const hub = new StandIn();
    hub.events = [event([row('bob')])];
    const { model, panel } = await shown(hub, 'event 0123456789ab has ended');
    one(panel.node, 'button[data-action="message"]').click();
    const text = one(panel.node, 'textarea[name="message"]') as HTMLTextAreaElement;
    text.value = 'Break until 11:00';
    one(panel.node, 'button[data-action="send"]').click();
    await settled();
    expect(one(panel.node, '.jp-ContinuumWorkshop-error').textContent).toBe(
      'event 0123456789ab has ended'
    );
    expect(text.value).toBe('Break until 11:00');
    expect(model.editing).toBe(true);

    // *Cancel* (or Escape) closes the form, the refresh held back meanwhile happens at once;
    // the text waits for the next *Send message…*
    const asked = hub.asked;
    await model.refresh();
    expect(hub.asked).toBe(asked);
    one(panel.node, 'button[data-action="cancel"]').click();
    expect(model.editing).toBe(false);
    await settled();
    expect(hub.asked).toBe(asked + 1);
    one(panel.node, 'button[data-action="message"]').click();
    expect(text.value).toBe('Break until 11:00');
    text.dispatchEvent(new KeyboardEvent('keydown', { key: 'Escape', bubbles: true }));
    expect(one(panel.node, 'form.jp-ContinuumWorkshop-compose').hidden).toBe(true);
    model.dispose();
    panel.dispose();
  });

  it('adds, orders and removes events without rebuilding the others', async () => {
    const hub = new StandIn();
    const first = event([], { id: 'aaaaaaaaaaaa', title: 'First' });
    const second = event([], { id: 'bbbbbbbbbbbb', title: 'Second' });
    hub.events = [second];
    const { model, panel } = await shown(hub);
    const kept = one(panel.node, 'section[data-event="bbbbbbbbbbbb"]');
    hub.events = [first, second];
    await model.refresh();
    const ids = () =>
      [...panel.node.querySelectorAll<HTMLElement>('section')].map(s => s.dataset.event);
    expect(ids()).toEqual(['aaaaaaaaaaaa', 'bbbbbbbbbbbb']);
    expect(one(panel.node, 'section[data-event="bbbbbbbbbbbb"]')).toBe(kept);
    hub.events = [second];
    await model.refresh();
    model.dispose();
    expect(ids()).toEqual(['bbbbbbbbbbbb']);
    panel.dispose();
  });
});
