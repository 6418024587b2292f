import { IEstimate } from '@continuum-hub/common';
import { Token } from '@lumino/coreutils';
import { ISignal } from '@lumino/signaling';

/**
 * The states of a batch run (and of each member of a sweep), as the workflows service says.
 */
export type RunState =
  'pending' | 'queued' | 'running' | 'done' | 'failed' | 'cancelled' | 'needs-sign-in';

/**
 * The states after which nothing more happens to a run.
 */
export const FINAL_STATES: readonly RunState[] = ['done', 'failed', 'cancelled'];

/**
 * One member of a run: the only one of a single run, one per parameter set of a sweep.
 */
export interface IRunMember {
  index: number;
  parameters: Record<string, unknown>;
  state: RunState;
  /** Slurm's reason while queued, the error of a failed cell, … */
  reason: string;
  node: string;
  /** The cell executing (or that failed), 1-based; null before the kernel starts. */
  cell: number | null;
  cells: number | null;
  started: string | null;
  ended: string | null;
}

/**
 * Where and with what a run executes (the spawn form's fields).
 */
export interface IRunResources {
  site: string;
  partition: string;
  cores?: number;
  memory_gb?: number;
  gpus?: number;
  walltime?: string;
  environment?: string;
}

/**
 * A sweep: a list of parameter sets, or a grid (every combination of the listed values).
 */
export type Sweep = { members: Record<string, unknown>[] } | { grid: Record<string, unknown[]> };

/**
 * A batch run as the workflows service reports it (`GET …/api/v1/runs`).
 */
export interface IRun {
  id: string;
  owner: string;
  name: string;
  workflow_id: string | null;
  step: string | null;
  state: RunState;
  reason: string;
  notebook: { path: string; sha256: string };
  parameters: Record<string, unknown>;
  sweep: Sweep | null;
  max_parallel: number | null;
  resources: IRunResources;
  members: IRunMember[];
  job_id: string | null;
  created: string;
  submitted: string | null;
  started: string | null;
  ended: string | null;
  based_on: string | null;
  credential_id: string | null;
}

/**
 * The answer of `GET {baseUrl}continuum/workflows/runs`.
 */
export interface IRunList {
  runs: IRun[];
  /** Seconds between two refreshes (`ContinuumLab.workflows_refresh_seconds`). */
  refresh_seconds: number;
}

/**
 * A partition the user may run on, with its limits.
 */
export interface IPartitionOption {
  name: string;
  label: string;
  max_cores: number;
  max_memory_gb: number;
  max_gpus: number;
  /** `H:MM`, `HH:MM:SS` or minutes. */
  max_walltime: string | number;
  default_walltime: string | number;
  /** Whether the site offers it first. */
  default?: boolean;
}

/**
 * A software environment of a site (a name, or a name with a label).
 */
export type EnvironmentOption = string | { name: string; label?: string; default?: boolean };

/**
 * A site the user may run on.
 */
export interface ISiteOption {
  name: string;
  label: string;
  partitions: IPartitionOption[];
  environments: EnvironmentOption[];
}

/**
 * The answer of `GET …/workflows/options`: what this user may ask for.
 */
export interface IRunOptions {
  sites: ISiteOption[];
  /** The service's limits, e.g. `max_sweep_members`. */
  limits: Record<string, unknown>;
}

/**
 * The kinds of parameter inputs the dialog shows.
 */
export type ParameterType = 'bool' | 'int' | 'float' | 'str' | 'list' | 'dict' | 'any';

/**
 * One parameter of the notebook's `parameters` cell (papermill's inspection).
 */
export interface INotebookParameter {
  name: string;
  type: ParameterType;
  /** The default as written in the cell. */
  default: string;
  /** The default as a JSON value, when it is a literal (`known`). */
  value: unknown;
  known: boolean;
  help: string;
}

/**
 * The answer of `GET …/workflows/parameters?path=`.
 */
export interface IParametersInfo {
  path: string;
  /** Whether the notebook has a cell tagged `parameters`. */
  cell: boolean;
  parameters: INotebookParameter[];
}

/**
 * What the dialog submits (`POST …/workflows/runs`); the server extension adds the notebook.
 */
export interface ISubmitRequest {
  path: string;
  name?: string;
  parameters: Record<string, unknown>;
  sweep: { grid: Record<string, unknown[]> } | null;
  max_parallel: number | null;
  resources: IRunResources;
  outputs: string[];
  retries: number;
}

/**
 * A workflow (a workflow file submitted: its steps' runs) as the service reports it.
 */
export interface IWorkflow {
  id: string;
  owner: string;
  name: string;
  state: string;
  reason: string;
  /** Each step's run id, by step name. */
  steps: Record<string, string>;
  schedule: string | null;
  next_run: string | null;
  created: string;
}

/**
 * A run credential: the hub token that lets a run work unattended.
 */
export interface ICredential {
  id: string;
  owner: string;
  run_id?: string | null;
  workflow_id?: string | null;
  created: string;
  expires: string;
  revoked: boolean;
  last_used?: string | null;
}

/**
 * What the panel and the dialog ask of the server extension (a seam for tests).
 */
export interface IWorkflowsAPI {
  options(): Promise<IRunOptions>;
  parameters(path: string): Promise<IParametersInfo>;
  /** When resources (the spawn form's fields) would start: the hub's estimate. */
  estimate(query: Record<string, string>): Promise<IEstimate>;
  list(): Promise<IRunList>;
  submit(request: ISubmitRequest): Promise<IRun>;
  /** Submit a workflow file (YAML, path relative to the server's root) with its notebooks. */
  submitWorkflow(path: string): Promise<IWorkflow>;
  /** The user's workflows. */
  workflows(): Promise<IWorkflow[]>;
  /**
   * Write a workflow file (YAML, the schema's format, checked by the server) at `path`; its
   * path. A file already there is refused (409).
   */
  saveWorkflow(path: string, workflow: object): Promise<string>;
  cancel(id: string): Promise<IRun>;
  rerun(id: string, parameters?: Record<string, unknown>): Promise<IRun>;
  /** Save the executed notebook into the user's files; its path. */
  open(id: string, member?: number): Promise<string>;
  /** Where the browser downloads the run folder (a tar.gz without credentials). */
  archiveUrl(id: string): string;
  credentials(): Promise<ICredential[]>;
  revoke(id: string): Promise<void>;
}

/**
 * The user's batch runs and run credentials, refreshed periodically.
 */
export interface IRunsModel {
  /** The last list, newest first; null until the first answer. */
  readonly runs: IRun[] | null;
  /** The run credentials; null until known. */
  readonly credentials: ICredential[] | null;
  /** The workflows (their runs are grouped below them); null until known. */
  readonly workflows: IWorkflow[] | null;
  /** The last error (e.g. the service cannot be reached); null when the last call worked. */
  readonly error: string | null;
  /** Emitted when anything above changes. */
  readonly changed: ISignal<IRunsModel, void>;
  /** Ask the server extension again now. */
  refresh(): Promise<void>;
  /** Cancel a run. */
  cancel(id: string): Promise<void>;
  /** Run again with `parameters` changed; the new run. */
  rerun(id: string, parameters?: Record<string, unknown>): Promise<IRun>;
  /** Revoke a run credential. */
  revoke(id: string): Promise<void>;
}

/**
 * The runs model token, for extensions that follow the user's batch runs.
 */
export const IRunsModel = new Token<IRunsModel>(
  '@continuum-hub/workflows:IRunsModel',
  "The user's batch runs and run credentials, refreshed periodically."
);
