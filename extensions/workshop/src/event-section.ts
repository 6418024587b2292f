/**
 * One event in the instructor's *Workshops* panel: its window, seats, buttons, message form and
 * participants. Built once and then updated in place at each refresh, so that the button or
 * row the keyboard is on and the text being written survive the panel's periodic refresh.
 */
import {
  actionButton as button,
  absoluteTime,
  showRelativeTime,
  tableWithHead
} from '@continuum-hub/common';

import { MessageForm } from './message-form';
import { EventAction, IParticipantRow, IWorkshopEvent } from './tokens';

/**
 * What the panel's buttons do: the plugin asks for confirmation, opens what the hub answers
 * and reports the outcome; a failure is thrown and shown.
 */
export interface IInstructorActions {
  /** Start all, stop all, push the material, send a message (`text`) or end the event. */
  event(ev: IWorkshopEvent, action: Exclude<EventAction, 'open'>, text?: string): Promise<void>;
  /** Open a participant's server through sharing. */
  open(ev: IWorkshopEvent, user: string): Promise<void>;
}

/** What a section needs from its panel. */
export interface ISectionHost {
  /** What the buttons do. */
  readonly actions: IInstructorActions;
  /** Follow an action under way (its failure is shown on the panel). */
  run(action: Promise<void>): void;
  /** Told when the section's message form opens or closes. */
  editing(open: boolean): void;
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

/** A participant's row and the cells it updates. */
interface IRow {
  tr: HTMLTableRowElement;
  cells: Record<string, HTMLTableCellElement>;
  open: HTMLButtonElement;
}

/**
 * An event's `<section>`: made once by the panel, then {@link update}d with each answer.
 */
export class EventSection {
  /**
   * @param ev - the event as first answered
   * @param host - the panel
   */
  constructor(ev: IWorkshopEvent, host: ISectionHost) {
    this._ev = ev;
    this._host = host;
    this.node = document.createElement('section');
    this.node.className = 'jp-ContinuumWorkshop-event';
    this.node.dataset.event = ev.id;
    const bar = document.createElement('div');
    bar.className = 'jp-ContinuumWorkshop-actions';
    for (const [action, label, classes] of BUTTONS) {
      const node = button(label, classes, action, () => this._click(action));
      this._buttons.set(action, node);
      bar.append(node);
    }
    this.form = new MessageForm(
      text => {
        const sent = host.actions.event(this._ev, 'message', text);
        host.run(sent);
        return sent;
      },
      open => host.editing(open)
    );
    this._facts.className = 'jp-ContinuumWorkshop-facts';
    this._none.className = 'jp-ContinuumWorkshop-empty';
    this._none.textContent = 'Nobody has joined yet.';
    this.node.append(this._title, this._facts, bar, this.form.node, this._none, this._table);
  }

  /** The event shown. */
  get event(): IWorkshopEvent {
    return this._ev;
  }

  /**
   * Show `ev`'s newest state, changing only what changed.
   *
   * @param ev - the event (same id)
   * @param now - the present, epoch milliseconds
   */
  update(ev: IWorkshopEvent, now: number): void {
    this._ev = ev;
    const phase = eventPhase(ev, now);
    this.node.dataset.phase = phase;
    setText(this._title, ev.title);
    const when = document.createElement('span');
    showRelativeTime(when, phase === 'upcoming' ? ev.start : ev.end, '', now);
    const verb = phase === 'upcoming' ? 'starts' : phase === 'running' ? 'ends' : 'ended';
    setText(
      this._facts,
      `${verb} ${when.textContent} · ${ev.site} › ${ev.partition} · ` +
        `${ev.participants.length} of ${ev.seats} seats`
    );
    this._facts.title = `${absoluteTime(ev.start)} – ${absoluteTime(ev.end)}`;
    this._button('push').disabled = !ev.material;
    this._button('start').disabled = phase !== 'running';
    this._none.hidden = ev.participants.length > 0;
    this._table.hidden = ev.participants.length === 0;
    this._updateRows(ev.participants, now);
  }

  private _button(action: string): HTMLButtonElement {
    const node = this._buttons.get(action);
    if (node === undefined) {
      throw new Error(`no ${action} button`);
    }
    return node;
  }

  private _click(action: Exclude<EventAction, 'open'>): void {
    if (action === 'message') {
      this.form.open();
    } else {
      this._host.run(this._host.actions.event(this._ev, action));
    }
  }

  private _updateRows(participants: readonly IParticipantRow[], now: number): void {
    const body = this._table.tBodies[0];
    const current = new Set(participants.map(row => row.user));
    for (const [user, row] of this._rows) {
      if (!current.has(user)) {
        row.tr.remove();
        this._rows.delete(user);
      }
    }
    participants.forEach((data, index) => {
      const row = this._rows.get(data.user) ?? this._row(data.user);
      // moved only when out of place: moving a row would take the keyboard's focus from it
      if (body.rows[index] !== row.tr) {
        body.insertBefore(row.tr, body.rows[index] ?? null);
      }
      row.tr.dataset.state = data.state;
      setText(row.cells.state, stateText(data));
      row.cells.state.title = data.job_id ? `job ${data.job_id}` : '';
      const joined = document.createElement('span');
      showRelativeTime(joined, data.joined || null, '', now);
      setText(row.cells.joined, joined.textContent ?? '');
      row.cells.joined.title = joined.title;
      // only a running server can be opened; the button stays the same node while it can
      const runs = data.state === 'running' || data.state === 'idle';
      if (runs && row.open.parentNode !== row.cells.actions) {
        row.cells.actions.append(row.open);
      } else if (!runs) {
        row.open.remove();
      }
    });
  }

  private _row(user: string): IRow {
    const tr = document.createElement('tr');
    tr.dataset.user = user;
    const cells: Record<string, HTMLTableCellElement> = {};
    for (const [field, title] of COLUMNS) {
      const cell = tr.insertCell();
      cell.dataset.field = field;
      cell.dataset.label = title;
      cells[field] = cell;
    }
    cells.user.textContent = user;
    const open = button('Open', 'jp-mod-styled', 'open', () =>
      this._host.run(this._host.actions.open(this._ev, user))
    );
    const row = { tr, cells, open };
    this._rows.set(user, row);
    return row;
  }

  /** The section. */
  readonly node: HTMLElement;
  /** The message to all participants. */
  readonly form: MessageForm;

  private _ev: IWorkshopEvent;
  private _host: ISectionHost;
  private _title = document.createElement('h3');
  private _facts = document.createElement('p');
  private _none = document.createElement('p');
  private _table = tableWithHead(
    'jp-ContinuumWorkshop-table',
    COLUMNS.map(([, title]) => title)
  );
  private _buttons = new Map<string, HTMLButtonElement>();
  private _rows = new Map<string, IRow>();
}

/** Set a node's text only when it differs (a write would restart screen readers' reading). */
function setText(node: HTMLElement, text: string): void {
  if (node.textContent !== text) {
    node.textContent = text;
  }
}
