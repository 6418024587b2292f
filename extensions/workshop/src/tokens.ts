/**
 * What the `continuum_lab` server extension answers for workshops: its `workshop/*` routes pass
 * on the hub's events API (`/hub/api/continuum/events`, issue 13 item 5) with the server's
 * own token.
 */

/** An instructor's message to the participants of an event (times ISO 8601, UTC). */
export interface IWorkshopMessage {
  /** Increasing over all events: the poll asks for those after the last one it holds. */
  id: number;
  /** The event's id. */
  event: string;
  /** The event's title. */
  title: string;
  sent_at: string;
  /** The instructor who sent it (a hub user name). */
  author: string;
  text: string;
}

/** The answer of `GET {baseUrl}continuum/workshop/messages?after=N`. */
export interface IMessagesAnswer {
  /** The messages newer than `after`, oldest first. */
  messages: IWorkshopMessage[];
  /** Seconds until the next check (the server's setting). */
  refresh_seconds?: number;
}

/** A participant's server as the instructor sees it (the hub's `server_state`). */
export type ServerState = 'queued' | 'starting' | 'running' | 'idle' | 'stopping' | 'stopped';

/** One participant's row of the instructor's view. */
export interface IParticipantRow {
  user: string;
  /** When they joined (ISO 8601), empty when unknown. */
  joined: string;
  /** The server's name (empty: the default server). */
  server: string;
  state: ServerState;
  /** Slurm's reason for `queued` (`Reservation`, `Priority`), `N min` for `idle`. */
  detail: string;
  job_id: string;
  last_activity: string;
}

/** An event the user instructs, with its participants and messages. */
export interface IWorkshopEvent {
  id: string;
  title: string;
  start: string;
  end: string;
  seats: number;
  site: string;
  partition: string;
  owner: string;
  /** Whether it has material (a repository or folder) to push. */
  material: boolean;
  participants: IParticipantRow[];
  messages: IWorkshopMessage[];
}

/** The answer of `GET {baseUrl}continuum/workshop/events`. */
export interface IEventsAnswer {
  /** The events not yet ended, soonest first; empty for someone who instructs none. */
  events: IWorkshopEvent[];
  refresh_seconds?: number;
}

/** What the instructor's buttons ask of an event. */
export type EventAction = 'start' | 'stop' | 'push' | 'end' | 'message' | 'open';

/** The body of `POST {baseUrl}continuum/workshop/act`. */
export interface IActionRequest {
  event: string;
  action: EventAction;
  /** The participant whose server to open (`open`). */
  user?: string;
  /** The message to all participants (`message`). */
  text?: string;
}

/** The hub's answer to an action (`url` for `open`, `attendance_url` and `stopped` for `end`). */
export interface IActionAnswer {
  url?: string;
  attendance_url?: string;
  started?: string[];
  stopped?: string[];
  [key: string]: unknown;
}
