import { Token } from '@lumino/coreutils';
import { ISignal } from '@lumino/signaling';

/**
 * One Dask Gateway cluster of the user, as the server extension reports it
 * (`GET {baseUrl}continuum/clusters`).
 */
export interface IClusterInfo {
  /** The gateway's name of the cluster. */
  name: string;
  /** The gateway's status, lower case: pending, running, stopping, … */
  status: string;
  /** Connected workers (from the scheduler); null when unknown (not running yet). */
  workers: number | null;
  /** Threads (cores) of the connected workers; null when unknown. */
  threads: number | null;
  /** Memory of the connected workers in bytes; null when unknown. */
  memory_bytes: number | null;
  /** ISO 8601 UTC start time; null when unknown. */
  start_time: string | null;
  /** Seconds since the start when the server answered; null when unknown. */
  age_seconds: number | null;
  /** The gateway's proxied dashboard URL; null until the scheduler runs. */
  dashboard_link: string | null;
  /** The cluster options it was created with. */
  options: Record<string, unknown>;
}

/**
 * The answer of `GET {baseUrl}continuum/clusters`.
 */
export interface IClusterList {
  clusters: IClusterInfo[];
  /** Seconds between two refreshes (`ContinuumLab.clusters_refresh_seconds`). */
  refresh_seconds: number;
}

/**
 * What the clusters model can ask of the server extension (a seam for tests).
 */
export interface IClustersAPI {
  list(): Promise<IClusterList>;
  create(options?: Record<string, unknown>): Promise<string>;
  scale(name: string, count: number): Promise<string | null>;
  stop(name: string): Promise<void>;
}

/**
 * The user's clusters, refreshed periodically.
 */
export interface IClustersModel {
  /** The last list; null until the first answer. */
  readonly clusters: IClusterInfo[] | null;
  /** The last error (e.g. the gateway cannot be reached); null when the last call worked. */
  readonly error: string | null;
  /** Emitted when the list or the error changes. */
  readonly changed: ISignal<IClustersModel, void>;
  /** Ask the server extension again now. */
  refresh(): Promise<void>;
  /** Start a cluster with the gateway's default options; its name. */
  create(options?: Record<string, unknown>): Promise<string>;
  /** Ask for `count` workers. */
  scale(name: string, count: number): Promise<void>;
  /** Shut a cluster down. */
  stop(name: string): Promise<void>;
}

/**
 * The clusters model token, for extensions that want to follow the user's clusters.
 */
export const IClustersModel = new Token<IClustersModel>(
  '@continuum-hub/clusters:IClustersModel',
  "The user's Dask Gateway clusters, refreshed periodically."
);
