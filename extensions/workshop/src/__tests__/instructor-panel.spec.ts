import { eventPhase, InstructorPanel, stateText } from '../instructor-panel';
import { event, model, one, recorder, row } from './fixtures';

const PARTICIPANTS = [
  row('bob'),
  row('carol', { state: 'queued', detail: 'Reservation', job_id: '77' }),
  row('dave', { state: 'idle', detail: '25 min' }),
  row('erin', { state: 'stopped', job_id: '' }),
  row('frank', { state: 'starting' })
];

describe('InstructorPanel', () => {
  it("lists each event's participants with their servers' states", async () => {
    const end = new Date(Date.now() + 90 * 60_000).toISOString();
    const { model: instructor } = model({
      events: [event(PARTICIPANTS, { end })],
      refresh_seconds: 10
    });
    const actions = recorder();
    const panel = new InstructorPanel(instructor, actions);
    await instructor.refresh();
    instructor.dispose();

    const section = one(panel.node, 'section[data-event="0123456789ab"]');
    expect(section.dataset.phase).toBe('running');
    expect(one(section, 'h3').textContent).toBe('Intro to Dask');
    expect(one(section, '.jp-ContinuumWorkshop-facts').textContent).toBe(
      'ends in 1 hour · alpha › interactive · 5 of 20 seats'
    );
    const rows = [...section.querySelectorAll<HTMLTableRowElement>('tbody tr')];
    expect(rows.map(r => r.dataset.user)).toEqual(['bob', 'carol', 'dave', 'erin', 'frank']);
    expect(rows.map(r => one(r, 'td[data-field="state"]').textContent)).toEqual([
      'running',
      'queued (Reservation)',
      'idle 25 min',
      'stopped',
      'starting'
    ]);
    expect(one(rows[1], 'td[data-field="state"]').title).toBe('job 77');
    // Open only where a server runs
    expect(rows.map(r => r.querySelector('button[data-action="open"]') !== null)).toEqual([
      true,
      false,
      true,
      false,
      false
    ]);
    one(rows[2], 'button[data-action="open"]').click();
    for (const action of ['start', 'stop', 'push', 'message', 'end']) {
      one(section, `button[data-action="${action}"]`).click();
    }
    await Promise.resolve();
    // *Send message…* opens the section's form: the message goes once written
    expect(actions.calls).toEqual([
      'open 0123456789ab dave',
      'start 0123456789ab',
      'stop 0123456789ab',
      'push 0123456789ab',
      'end 0123456789ab'
    ]);
    expect(one(section, 'form.jp-ContinuumWorkshop-compose').hidden).toBe(false);
    expect(one(panel.node, '.jp-ContinuumWorkshop-empty').textContent).toBe('');
  });

  it('offers no start before the event nor a push without material', async () => {
    const later = event([], {
      material: false,
      start: new Date(Date.now() + 7200_000).toISOString(),
      end: new Date(Date.now() + 10800_000).toISOString()
    });
    const { model: instructor } = model({ events: [later] });
    const panel = new InstructorPanel(instructor, recorder());
    await instructor.refresh();
    instructor.dispose();
    const section = one(panel.node, 'section');
    expect(section.dataset.phase).toBe('upcoming');
    expect((one(section, 'button[data-action="start"]') as HTMLButtonElement).disabled).toBe(true);
    expect((one(section, 'button[data-action="push"]') as HTMLButtonElement).disabled).toBe(true);
    expect((one(section, 'button[data-action="end"]') as HTMLButtonElement).disabled).toBe(false);
    expect(section.textContent).toContain('Nobody has joined yet.');
  });

  it('says when there is no event and shows errors, failed actions included', async () => {
    const { model: instructor } = model({ events: [] }, 'The hub cannot be reached');
    const actions = recorder();
    actions.event = async () => {
      throw new Error('event 0123456789ab is not running now');
    };
    const panel = new InstructorPanel(instructor, actions);
    panel.render();
    expect(one(panel.node, '.jp-ContinuumWorkshop-empty').textContent).toBe(
      'Asking the hub for your events…'
    );
    await instructor.refresh();
    expect(one(panel.node, '.jp-ContinuumWorkshop-empty').textContent).toBe(
      'You instruct no event that is running or to come.'
    );
    await instructor.refresh();
    instructor.dispose();
    const error = one(panel.node, '.jp-ContinuumWorkshop-error');
    expect(error.hidden).toBe(false);
    expect(error.textContent).toBe('The hub cannot be reached');
  });

  it('shows why an action failed', async () => {
    const { model: instructor } = model({ events: [event([row('bob')])] });
    const actions = recorder();
    actions.event = async () => {
      throw new Error('event 0123456789ab is not running now');
    };
    const panel = new InstructorPanel(instructor, actions);
    await instructor.refresh();
    instructor.dispose();
    one(panel.node, 'button[data-action="start"]').click();
    await new Promise(resolve => setTimeout(resolve, 0));
    expect(one(panel.node, '.jp-ContinuumWorkshop-error').textContent).toBe(
      'event 0123456789ab is not running now'
    );
  });
});

describe('InstructorModel', () => {
  it('sends the action and refreshes after it', async () => {
    const { model: instructor, sent } = model({ events: [event([row('bob')])] });
    const answer = await instructor.run({ event: '0123456789ab', action: 'open', user: 'bob' });
    expect(answer.url).toBe('/user/bob/');
    expect(sent).toEqual([{ event: '0123456789ab', action: 'open', user: 'bob' }]);
    await new Promise(resolve => setTimeout(resolve, 0));
    expect(instructor.events?.map(e => e.id)).toEqual(['0123456789ab']);
    instructor.dispose();
  });
});

describe('words', () => {
  it.each([
    ['queued', 'Priority', 'queued (Priority)'],
    ['queued', '', 'queued'],
    ['idle', '12 min', 'idle 12 min'],
    ['running', '', 'running'],
    ['stopped', 'COMPLETED', 'stopped']
  ] as const)('%s %s reads %s', (state, detail, text) => {
    expect(stateText({ state, detail })).toBe(text);
  });

  it('places an event in time', () => {
    const ev = { start: '2026-12-05T09:00:00Z', end: '2026-12-05T12:00:00Z' };
    expect(eventPhase(ev, Date.parse('2026-12-05T08:00:00Z'))).toBe('upcoming');
    expect(eventPhase(ev, Date.parse('2026-12-05T10:00:00Z'))).toBe('running');
    expect(eventPhase(ev, Date.parse('2026-12-05T12:00:00Z'))).toBe('ended');
  });
});
