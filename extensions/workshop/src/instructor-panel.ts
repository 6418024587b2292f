import {
  actionButton as button,
  absoluteTime,
  ListPanel,
  showRelativeTime,
  tableWithHead
} from '@continuum-hub/common';

import { InstructorModel } from './instructor-model';
import { EventAction, IParticipantRow, IWorkshopEvent } from './tokens';

/**
 * What the panel's buttons do: the plugin asks for confirmation or the message's text,
 * opens what the hub answers and reports the outcome; a failure is thrown and shown.
 */
export interface IInstructorActions {
  /** Start all, stop all, push the material, send a message or end the event. */
  event(ev: IWorkshopEvent, action: Exclude<EventAction, 'open'>): Promise<void>;
  /** Open a participant's server through sharing. */
  open(ev: IWorkshopEvent, user: string): Promise<void>;
}

/** The participants table's columns: `data-field` and title. */
const COLUMNS: [string, string][] = [
  ['user', 'Participant'],
  ['state', 'Server'],
  ['joined', 'Joined'],
  ['actions', '']
];

/** The event's buttons: action, label, classes. */
const BUTTONS: [Exclude<EventAction, 'open'>, string, string][] = [
  ['start', 'Start all', 'jp-mod-styled jp-mod-accept'],
  ['stop', 'Stop all', 'jp-mod-styled'],
  ['push', 'Push material update', 'jp-mod-styled'],
  ['message', 'Send message…', 'jp-mod-styled'],
  ['end', 'End event…', 'jp-mod-styled jp-mod-warn']
];

/**
 * A participant's server state in words: `queued (Reservation)`, `idle 25 min`, `running`.
 *
 * @param row - the participant's row
 */
export function stateText(row: Pick<IParticipantRow, 'state' | 'detail'>): string {
  if (row.state === 'queued') {
    return row.detail ? `queued (${row.detail})` : 'queued';
  }
  if (row.state === 'idle') {
    return row.detail ? `idle ${row.detail}` : 'idle';
  }
  return row.state;
}

/**
 * Whether the event runs at `now`, is to come, or (shown until the next refresh) has ended.
 *
 * @param ev - the event
 * @param now - the present, epoch milliseconds
 */
export function eventPhase(
  ev: Pick<IWorkshopEvent, 'start' | 'end'>,
  now: number = Date.now()
): 'upcoming' | 'running' | 'ended' {
  if (Date.parse(ev.end) <= now) {
    return 'ended';
  }
  return Date.parse(ev.start) > now ? 'upcoming' : 'running';
}

/**
 * The instructor's side panel: per event its window, seats and participants with their
 * servers' states, the event's buttons and *Open* on each running server.
 */
export class InstructorPanel extends ListPanel {
  /**
   * @param model - the events shown
   * @param actions - what the buttons do
   */
  constructor(model: InstructorModel, actions: IInstructorActions) {
    super('jp-ContinuumWorkshop', 'Workshops');
    this._model = model;
    this._actions = actions;
    this._events = document.createElement('div');
    this.node.append(this._events);
    model.changed.connect(() => this.render(), this);
  }

  render(): void {
    const events = this._model.events;
    this.showState(
      events,
      this._model.error,
      'Asking the hub for your events…',
      'You instruct no event that is running or to come.'
    );
    const now = Date.now();
    this._events.replaceChildren(...(events ?? []).map(ev => this._section(ev, now)));
  }

  private _section(ev: IWorkshopEvent, now: number): HTMLElement {
    const section = document.createElement('section');
    section.className = 'jp-ContinuumWorkshop-event';
    section.dataset.event = ev.id;
    const phase = eventPhase(ev, now);
    section.dataset.phase = phase;
    const title = document.createElement('h3');
    title.textContent = ev.title;
    const facts = document.createElement('p');
    facts.className = 'jp-ContinuumWorkshop-facts';
    const when = document.createElement('span');
    showRelativeTime(when, phase === 'upcoming' ? ev.start : ev.end, '', now);
    when.textContent = `${phase === 'upcoming' ? 'starts' : phase === 'running' ? 'ends' : 'ended'} ${when.textContent}`;
    when.title = `${absoluteTime(ev.start)} – ${absoluteTime(ev.end)}`;
    facts.append(
      when,
      ` · ${ev.site} › ${ev.partition} · ${ev.participants.length} of ${ev.seats} seats`
    );
    const bar = document.createElement('div');
    bar.className = 'jp-ContinuumWorkshop-actions';
    for (const [action, label, classes] of BUTTONS) {
      const node = button(label, classes, action, () =>
        this.runAction(this._actions.event(ev, action))
      );
      node.disabled =
        (action === 'push' && !ev.material) || (action === 'start' && phase !== 'running');
      bar.append(node);
    }
    section.append(title, facts, bar, this._table(ev, now));
    return section;
  }

  private _table(ev: IWorkshopEvent, now: number): HTMLElement {
    if (ev.participants.length === 0) {
      const none = document.createElement('p');
      none.className = 'jp-ContinuumWorkshop-empty';
      none.textContent = 'Nobody has joined yet.';
      return none;
    }
    const table = tableWithHead(
      'jp-ContinuumWorkshop-table',
      COLUMNS.map(([, title]) => title)
    );
    for (const row of ev.participants) {
      const tr = table.tBodies[0].insertRow();
      tr.dataset.user = row.user;
      tr.dataset.state = row.state;
      const cells: Record<string, HTMLTableCellElement> = {};
      for (const [field, title] of COLUMNS) {
        const cell = tr.insertCell();
        cell.dataset.field = field;
        cell.dataset.label = title;
        cells[field] = cell;
      }
      cells.user.textContent = row.user;
      cells.state.textContent = stateText(row);
      cells.state.title = row.job_id ? `job ${row.job_id}` : '';
      showRelativeTime(cells.joined, row.joined || null, '', now);
      if (row.state === 'running' || row.state === 'idle') {
        cells.actions.append(
          button('Open', 'jp-mod-styled', 'open', () =>
            this.runAction(this._actions.open(ev, row.user))
          )
        );
      }
    }
    return table;
  }

  private _model: InstructorModel;
  private _actions: IInstructorActions;
  private _events: HTMLDivElement;
}
