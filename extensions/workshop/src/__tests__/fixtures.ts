import { InstructorModel } from '../instructor-model';
import { IInstructorActions } from '../instructor-panel';
import {
  IActionRequest,
  IEventsAnswer,
  IParticipantRow,
  IWorkshopEvent,
  IWorkshopMessage
} from '../tokens';

/** A message of event `e1` with id `id` (fields overridable). */
export function message(id: number, changes: Partial<IWorkshopMessage> = {}): IWorkshopMessage {
  return {
    id,
    event: '0123456789ab',
    title: 'Intro to Dask',
    sent_at: '2026-12-05T09:00:00+00:00',
    author: 'alice',
    text: `message ${id}`,
    ...changes
  };
}

/** A participant's row (fields overridable). */
export function row(user: string, changes: Partial<IParticipantRow> = {}): IParticipantRow {
  return {
    user,
    joined: '2026-12-05T08:55:00+00:00',
    server: '',
    state: 'running',
    detail: '',
    job_id: '4242',
    last_activity: '',
    ...changes
  };
}

/** An event running now (an hour either side) with material and `participants`. */
export function event(
  participants: IParticipantRow[],
  changes: Partial<IWorkshopEvent> = {}
): IWorkshopEvent {
  const now = Date.now();
  return {
    id: '0123456789ab',
    title: 'Intro to Dask',
    start: new Date(now - 3600_000).toISOString(),
    end: new Date(now + 3600_000).toISOString(),
    seats: 20,
    site: 'alpha',
    partition: 'interactive',
    owner: 'alice',
    material: true,
    participants,
    messages: [],
    ...changes
  };
}

/** The one element below `node` matching `selector`. */
export function one(node: ParentNode, selector: string): HTMLElement {
  const found = node.querySelector<HTMLElement>(selector);
  if (found === null) {
    throw new Error(`nothing matches ${selector}`);
  }
  return found;
}

/** A model over `answers` (one per refresh, the last repeated); records the actions sent. */
export function model(...answers: (IEventsAnswer | string)[]): {
  model: InstructorModel;
  sent: IActionRequest[];
} {
  const sent: IActionRequest[] = [];
  let asked = 0;
  const instructor = new InstructorModel(
    async () => {
      const answer = answers[Math.min(asked, answers.length - 1)];
      asked += 1;
      if (typeof answer === 'string') {
        throw new Error(answer);
      }
      return answer;
    },
    async request => {
      sent.push(request);
      return request.action === 'open' ? { url: '/user/bob/' } : {};
    }
  );
  return { model: instructor, sent };
}

/** Actions that record what the panel asked. */
export function recorder(): IInstructorActions & { calls: string[] } {
  const calls: string[] = [];
  return {
    calls,
    event: async (ev, action, text) => {
      calls.push(text === undefined ? `${action} ${ev.id}` : `${action} ${ev.id} ${text}`);
    },
    open: async (ev, user) => {
      calls.push(`open ${ev.id} ${user}`);
    }
  };
}
