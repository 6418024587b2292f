import { errorMessage } from '@continuum-hub/common';
import { URLExt } from '@jupyterlab/coreutils';
import { ISignal, Signal } from '@lumino/signaling';

import {
  FINAL_REQUEST_STATES,
  IAvailabilityRequest,
  ICatalogueAPI,
  IEntry,
  IUsableSites
} from './tokens';

/**
 * Seconds between two questions about a *make available* request.
 */
export const REQUEST_POLL_SECONDS = 5;

/**
 * Whether the user may use `site`: true, false, or null when the sites are not known.
 */
export function mayUse(site: string, usable: IUsableSites | null): boolean | null {
  if (!usable || !usable.known) {
    return null;
  }
  return usable.sites.some(s => s.name === site);
}

/**
 * The sites holding an available replica of the entry, in the service's order.
 */
export function dataSites(entry: IEntry): string[] {
  const sites = entry.replicas.filter(r => r.state === 'available' && r.site).map(r => r.site);
  return [...new Set(sites)];
}

/**
 * The site whose replica *Insert code* and *Copy path* use by default: the first available
 * replica's site the user may use, else the first replica's.
 */
export function defaultSite(entry: IEntry, usable: IUsableSites | null): string {
  const near = dataSites(entry).find(site => mayUse(site, usable) !== false);
  return near ?? entry.replicas[0]?.site ?? '';
}

/**
 * The sites *Make available at site…* offers: usable sites without an available or pending
 * replica of the entry (none while the usable sites are unknown).
 */
export function availabilityTargets(entry: IEntry, usable: IUsableSites | null): string[] {
  if (!usable || !usable.known) {
    return [];
  }
  const held = new Set(entry.replicas.filter(r => r.state !== 'unavailable').map(r => r.site));
  return usable.sites.map(s => s.name).filter(site => !held.has(site));
}

/**
 * Where *Start near the data* starts a server: the first site holding an available replica
 * that the user may use; null when there is none.
 */
export function startSite(entry: IEntry, usable: IUsableSites | null): string | null {
  return dataSites(entry).find(site => mayUse(site, usable) === true) ?? null;
}

/**
 * What *Copy path/DID* copies: the path of the replica at `site` (a file), else the entry's
 * own identifier (a Rucio DID, a table's name).
 */
export function copyText(entry: IEntry, site: string): string {
  const replica = entry.replicas.find(r => r.site === site && r.path);
  return replica ? replica.path : entry.identifier;
}

/**
 * Which of the entry view's actions can act now.
 */
export function enabledActions(
  entry: IEntry,
  usable: IUsableSites | null
): { insert: boolean; copy: boolean; makeAvailable: boolean; startNear: boolean } {
  return {
    insert: Boolean(entry.access?.code),
    copy: Boolean(entry.identifier),
    makeAvailable: entry.replicas.length > 0 && availabilityTargets(entry, usable).length > 0,
    startNear: startSite(entry, usable) !== null
  };
}

/**
 * The name of the named server *Start near the data* starts at `site`.
 */
export function nearServerName(site: string): string {
  return `near-${site}`;
}

/**
 * The hub's spawn page for a named server near the data, its form preselected: the site, the
 * sites holding the data and the dataset.
 *
 * @param hubPrefix - the hub's prefix (`/hub/`)
 * @param user - the hub user
 * @param site - where to start
 * @param entry - the dataset about to be read
 */
export function startNearUrl(hubPrefix: string, user: string, site: string, entry: IEntry): string {
  const path = URLExt.join(
    hubPrefix,
    'spawn',
    encodeURIComponent(user),
    encodeURIComponent(nearServerName(site))
  );
  const query = URLExt.objectToQueryString({
    site,
    data_sites: dataSites(entry).join(','),
    datasets: entry.id
  });
  return path + query;
}

/**
 * Another extension's command that starts work at a site (`{site}` preselects it in its
 * dialog): the clusters extension's *New Dask cluster* and the workflows extension's *Run as
 * batch job*.  *Start near the data* offers each one the application has.
 */
export interface INearCommand {
  id: string;
  label: string;
  /** The button's `data-action`. */
  action: string;
  /** The button's tooltip at `site`. */
  title(site: string): string;
}

export const NEAR_COMMANDS: readonly INearCommand[] = [
  {
    id: 'continuum:new-dask-cluster',
    label: 'New Dask cluster here',
    action: 'near-dask',
    title: site => `Open the New Dask cluster dialog with ${site} chosen`
  },
  {
    id: 'continuum-workflows:run-batch',
    label: 'Run a notebook here as a batch job',
    action: 'near-batch',
    title: site => `Run the current notebook as a batch job, ${site} chosen`
  }
];

/**
 * The near-the-data commands the application has (`has`: whether a command exists).
 */
export function nearCommands(has: (id: string) => boolean): INearCommand[] {
  return NEAR_COMMANDS.filter(command => has(command.id));
}

/**
 * What a near-the-data command is given: the site to preselect.
 */
export function nearArguments(site: string): { site: string } {
  return { site };
}

/**
 * What a *make available* request's state says to the user.
 */
export function requestLabel(request: IAvailabilityRequest): string {
  switch (request.state) {
    case 'requested':
      return `Requested a copy at ${request.site}…`;
    case 'replicating':
      return `Replicating to ${request.site}…`;
    case 'available':
      return `Available at ${request.site}.`;
    default:
      return `${request.state} at ${request.site}${request.message ? `: ${request.message}` : ''}`;
  }
}

/**
 * A *make available* request followed until the service says it changes no more: asked
 * every {@link REQUEST_POLL_SECONDS}; it is never shown done before the service says so.
 */
export class AvailabilityFollower {
  constructor(
    private _api: ICatalogueAPI,
    private _pollSeconds = REQUEST_POLL_SECONDS
  ) {}

  /** Emitted when the request's state or the last error change. */
  get changed(): ISignal<this, void> {
    return this._changed;
  }

  get request(): IAvailabilityRequest | null {
    return this._request;
  }

  get error(): string | null {
    return this._error;
  }

  /** Whether the request may still change. */
  get following(): boolean {
    return this._request !== null && !FINAL_REQUEST_STATES.includes(this._request.state);
  }

  /**
   * Ask for a copy of `entryId` at `site` and follow the request.
   */
  async start(entryId: string, site: string): Promise<void> {
    this.dispose();
    this._disposed = false;
    this._error = null;
    this._request = await this._api.makeAvailable(entryId, site);
    this._changed.emit();
    this._schedule();
  }

  /**
   * Ask for the request's state now.
   */
  async poll(): Promise<void> {
    if (!this._request) {
      return;
    }
    try {
      this._request = await this._api.request(this._request.id);
      this._error = null;
    } catch (error) {
      this._error = errorMessage(error);
    }
    this._changed.emit();
    this._schedule();
  }

  dispose(): void {
    this._disposed = true;
    if (this._timer !== null) {
      window.clearTimeout(this._timer);
      this._timer = null;
    }
  }

  private _schedule(): void {
    if (this._disposed || !this.following) {
      return;
    }
    this._timer = window.setTimeout(() => {
      this._timer = null;
      void this.poll();
    }, this._pollSeconds * 1000);
  }

  private _request: IAvailabilityRequest | null = null;
  private _error: string | null = null;
  private _timer: number | null = null;
  private _disposed = false;
  private _changed = new Signal<this, void>(this);
}
