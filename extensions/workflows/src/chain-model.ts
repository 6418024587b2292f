import { ISubmitRequest } from './tokens';

/**
 * A step's name in a workflow file: lowercase letters, digits and `-` (the schema's rule).
 */
export const STEP_NAME = /^[a-z][a-z0-9-]{0,39}$/;

/**
 * A workflow's name: letters, digits, `.`, `_`, `-` (the schema's rule).
 */
export const WORKFLOW_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;

/**
 * The most steps of one workflow (the schema's `maxItems`).
 */
export const MAX_STEPS = 100;

/**
 * One step of a chain being built: the *Run as batch job* form's checked request, its name and
 * the earlier steps it runs after.
 */
export interface IChainStep {
  name: string;
  request: ISubmitRequest;
  after: string[];
}

/**
 * A step of the workflow file (`workflow.schema.json`'s `step`), defaults left out.
 */
export type WorkflowStepDocument = Record<string, unknown> & { name: string; notebook: string };

/**
 * The workflow file's document (`workflow.schema.json`).
 */
export interface IWorkflowDocument {
  name: string;
  steps: WorkflowStepDocument[];
}

/**
 * A step name from a notebook's path: its file name in lowercase, other characters as `-`,
 * starting with a letter, unique among `taken`.
 *
 * @param path - the notebook's path
 * @param taken - the names already used
 */
export function stepName(path: string, taken: string[]): string {
  const stem = (path.split('/').pop() ?? '').replace(/\.ipynb$/, '');
  let base = stem
    .toLowerCase()
    .replace(/[^a-z0-9-]+/g, '-')
    .replace(/^[^a-z]+/, '')
    .replace(/-+$/, '')
    .slice(0, 32);
  base = base || 'step';
  let name = base;
  for (let n = 2; taken.includes(name); n++) {
    name = `${base}-${n}`;
  }
  return name;
}

/**
 * Where a workflow file is saved: next to `notebook`, named after the workflow.
 *
 * @param notebook - the first step's notebook path
 * @param name - the workflow's name
 */
export function workflowPath(notebook: string, name: string): string {
  const folder = notebook.includes('/') ? notebook.slice(0, notebook.lastIndexOf('/') + 1) : '';
  return `${folder}${name}.yaml`;
}

/**
 * A chain of notebook steps, built step by step in the *Workflow…* dialog: add, remove, move,
 * dependencies on earlier steps only, and the workflow file's document.
 */
export class ChainModel {
  /**
   * @param name - the workflow's name
   */
  constructor(public name = '') {}

  /** The steps, in the file's order. */
  get steps(): readonly IChainStep[] {
    return this._steps;
  }

  /**
   * Add a step for a checked request (named after its notebook unless `name` is given), by
   * default after the current last step; the new step.
   *
   * @param request - the step's checked *Run as batch job* request
   * @param after - the earlier steps it runs after (default: the last one)
   * @param name - its name
   */
  add(request: ISubmitRequest, after?: string[], name?: string): IChainStep {
    if (this._steps.length >= MAX_STEPS) {
      throw new Error(`A workflow has at most ${MAX_STEPS} steps.`);
    }
    const names = this._steps.map(s => s.name);
    const chosen = name ?? stepName(request.path, names);
    if (!STEP_NAME.test(chosen) || names.includes(chosen)) {
      throw new Error(`${chosen}: step names are unique, lowercase letters, digits and "-".`);
    }
    const last = names.length > 0 ? [names[names.length - 1]] : [];
    const step = { name: chosen, request, after: (after ?? last).filter(n => names.includes(n)) };
    this._steps.push(step);
    return step;
  }

  /**
   * Remove the step at `index`; later steps no longer run after it.
   *
   * @param index - the step's position
   */
  remove(index: number): void {
    const [removed] = this._steps.splice(index, 1);
    if (removed) {
      for (const step of this._steps) {
        step.after = step.after.filter(n => n !== removed.name);
      }
    }
  }

  /**
   * Move the step at `index` by `delta` places. A step may only run after earlier steps:
   * dependencies the move would turn around are dropped, and returned.
   *
   * @param index - the step's position
   * @param delta - -1 up, +1 down
   */
  move(index: number, delta: number): string[] {
    const target = index + delta;
    if (target < 0 || target >= this._steps.length || index < 0 || index >= this._steps.length) {
      return [];
    }
    const [step] = this._steps.splice(index, 1);
    this._steps.splice(target, 0, step);
    const dropped: string[] = [];
    this._steps.forEach((current, position) => {
      const earlier = this._steps.slice(0, position).map(s => s.name);
      const kept = current.after.filter(n => earlier.includes(n));
      dropped.push(
        ...current.after.filter(n => !kept.includes(n)).map(n => `${current.name}→${n}`)
      );
      current.after = kept;
    });
    return dropped;
  }

  /**
   * Set which earlier steps the step at `index` runs after (others are ignored).
   *
   * @param index - the step's position
   * @param after - the names of earlier steps
   */
  setAfter(index: number, after: string[]): void {
    const earlier = this._steps.slice(0, index).map(s => s.name);
    this._steps[index].after = earlier.filter(n => after.includes(n));
  }

  /**
   * Problems that keep the chain from being a workflow file (empty when none).
   */
  problems(): string[] {
    const found: string[] = [];
    if (!WORKFLOW_NAME.test(this.name)) {
      found.push('Name the workflow: letters, digits, ".", "_" or "-".');
    }
    if (this._steps.length === 0) {
      found.push('Add at least one step.');
    }
    return found;
  }

  /**
   * The workflow file's document (`workflow.schema.json`): each step's notebook, parameters,
   * sweep, resources, outputs and retries from its request, `depends_on` from its dependencies.
   */
  toDocument(): IWorkflowDocument {
    return {
      name: this.name,
      steps: this._steps.map(step => stepDocument(step))
    };
  }

  private _steps: IChainStep[] = [];
}

/**
 * One step of the workflow file, defaults left out (as `continuum_hub.workflows.spec` writes).
 *
 * @param step - the chain's step
 */
export function stepDocument(step: IChainStep): WorkflowStepDocument {
  const request = step.request;
  const document: WorkflowStepDocument = { name: step.name, notebook: request.path };
  if (Object.keys(request.parameters).length > 0) {
    document.parameters = request.parameters;
  }
  if (request.sweep) {
    document.sweep = request.sweep.grid;
    if (request.max_parallel) {
      document.max_parallel = request.max_parallel;
    }
  }
  if (step.after.length > 0) {
    document.depends_on = [...step.after];
  }
  const resources: Record<string, unknown> = { ...request.resources };
  if (typeof resources.memory_gb === 'number') {
    resources.memory_gb = Math.ceil(resources.memory_gb); // the file holds whole gigabytes
  }
  document.resources = resources;
  if (request.outputs.length > 0) {
    document.outputs = [...request.outputs];
  }
  if (request.retries > 0) {
    document.retries = request.retries;
  }
  return document;
}
