import { IParticipantRow, IWorkshopEvent, IWorkshopMessage } from '../tokens';

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
