import { Token } from '@lumino/coreutils';
import { ISignal } from '@lumino/signaling';

/**
 * The batch job behind this JupyterLab, as the server extension reports it
 * (`GET {baseUrl}continuum/session`).
 */
export interface IJobInfo {
  /** Where the answer comes from: the hub (scheduler's view) or the job's environment. */
  source: 'hub' | 'environment';
  site: string | null;
  site_label: string | null;
  partition: string | null;
  job_id: string | null;
  state: 'pending' | 'running' | 'gone' | 'unknown';
  node: string | null;
  cores: number | null;
  memory_gb: number | null;
  gpus: number | null;
  environment: string;
  walltime_minutes: number | null;
  /** ISO 8601 UTC, or null when unknown. */
  start_time: string | null;
  end_time: string | null;
  /** Seconds left when the server answered; null when the end is unknown. */
  remaining_seconds: number | null;
  /** The server's time of the answer (ISO 8601 UTC). */
  now: string;
  settings: ISessionSettings;
}

/**
 * Settings of the server extension (`ContinuumLab.*` traitlets options).
 */
export interface ISessionSettings {
  /** Minutes before the end at which to warn, latest first. */
  warning_minutes: number[];
  /** Seconds between two refreshes of the job information. */
  refresh_seconds: number;
}

/**
 * A walltime warning that is due.
 */
export interface IWalltimeWarning {
  /** The threshold crossed, in minutes. */
  minutes: number;
  /** Seconds left when the warning fired. */
  remainingSeconds: number;
}

/**
 * The session model: the job's information and its remaining walltime, kept current.
 */
export interface ISessionModel {
  /** The last job information; null until the first answer. */
  readonly info: IJobInfo | null;
  /** Seconds left now (counted down in the browser); null when unknown. */
  readonly remainingSeconds: number | null;
  /** The last error talking to the server extension, if any. */
  readonly error: string | null;
  /** Emitted on every change: new information, or each second of the countdown. */
  readonly changed: ISignal<ISessionModel, void>;
  /** Emitted once for each warning threshold crossed. */
  readonly warning: ISignal<ISessionModel, IWalltimeWarning>;
  /** Ask the server extension again now. */
  refresh(): Promise<void>;
}

/**
 * The session model token, for extensions that need to know the job and how long it has
 * left (a later promote-to-batch panel, say).
 */
export const ISessionModel = new Token<ISessionModel>(
  '@continuum-hub/session:ISessionModel',
  'The batch job behind this JupyterLab and its remaining walltime.'
);
