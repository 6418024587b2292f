import { ListPanel } from '@continuum-hub/common';

import { EventSection, IInstructorActions, ISectionHost } from './event-section';
import { InstructorModel } from './instructor-model';

export { eventPhase, stateText } from './event-section';
export type { IInstructorActions } from './event-section';

/**
 * The instructor's side panel: per event its window, seats and participants with their
 * servers' states, the event's buttons, a message form and *Open* on each running server.
 *
 * Each refresh updates the events' sections in place (see {@link EventSection}): the element
 * the keyboard is on and a message being written stay; while a message form is open the
 * periodic refresh pauses ({@link InstructorModel.editing}).
 */
export class InstructorPanel extends ListPanel {
  /**
   * @param model - the events shown
   * @param actions - what the buttons do
   */
  constructor(model: InstructorModel, actions: IInstructorActions) {
    super('jp-ContinuumWorkshop', 'Workshops');
    this._model = model;
    this._host = {
      actions,
      run: action => this.runAction(action),
      editing: () => {
        model.editing = [...this._sections.values()].some(s => s.form.isOpen);
      }
    };
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
    const current = new Set((events ?? []).map(ev => ev.id));
    for (const [id, section] of this._sections) {
      if (!current.has(id)) {
        section.form.close();
        section.node.remove();
        this._sections.delete(id);
      }
    }
    (events ?? []).forEach((ev, index) => {
      let section = this._sections.get(ev.id);
      if (section === undefined) {
        section = new EventSection(ev, this._host);
        this._sections.set(ev.id, section);
      }
      section.update(ev, now);
      // moved only when out of place: moving would take the keyboard's focus out of it
      if (this._events.children[index] !== section.node) {
        this._events.insertBefore(section.node, this._events.children[index] ?? null);
      }
    });
  }

  private _model: InstructorModel;
  private _host: ISectionHost;
  private _events: HTMLDivElement;
  private _sections = new Map<string, EventSection>();
}
