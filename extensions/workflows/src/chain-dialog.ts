import { actionButton as button } from '@continuum-hub/common';
import { Dialog, showDialog } from '@jupyterlab/apputils';
import { Widget } from '@lumino/widgets';

import { ChainModel, IChainStep, STEP_NAME, workflowPath } from './chain-model';
import { notebookDialog, refusedAsProblem } from './dialogs';
import { ISubmitRequest, IWorkflow, IWorkflowsAPI } from './tokens';

/**
 * What the *Workflow…* dialog needs besides the API: the notebook of a new step, chosen among
 * the user's files (null when cancelled).
 */
export interface IChainDialogHelpers {
  pickNotebook(near: string): Promise<string | null>;
}

/**
 * What the dialog ended with: the saved workflow file, and the workflow when *Run* was chosen.
 */
export interface IChainResult {
  path: string;
  workflow: IWorkflow | null;
}

const ADD = 'Add step…';
const SAVE = 'Save as YAML';
const RUN = 'Run';

/**
 * The *Workflow…* dialog's body: the workflow's name and its steps in order, each with the
 * earlier steps it runs after (`after:` check boxes), *Up*, *Down* and *Remove*. Changes go to
 * the model at once.
 */
export class ChainForm extends Widget implements Dialog.IBodyWidget<{ name: string }> {
  /**
   * @param model - the chain being built
   * @param problems - what kept the last try from being saved
   */
  constructor(
    private _model: ChainModel,
    private _problems: string[] = []
  ) {
    super();
    this.addClass('jp-ContinuumWorkflows-chain');
    this._nameInput.name = 'workflow-name';
    this._nameInput.value = _model.name;
    this._nameInput.placeholder = 'my-workflow';
    this.render();
  }

  /**
   * The workflow's name as typed.
   */
  getValue(): { name: string } {
    return { name: this._nameInput.value.trim() };
  }

  /**
   * Draw the name, the problems and the steps again (after a change).
   */
  render(): void {
    this.node.replaceChildren();
    const label = document.createElement('label');
    label.textContent = 'Workflow name ';
    label.append(this._nameInput);
    this.node.append(label);
    for (const problem of this._problems) {
      const line = document.createElement('p');
      line.className = 'jp-ContinuumWorkflows-error';
      line.textContent = problem;
      this.node.append(line);
    }
    const steps = this._model.steps;
    if (steps.length === 0) {
      const empty = document.createElement('p');
      empty.textContent = 'No steps yet: add one.';
      this.node.append(empty);
      return;
    }
    const list = document.createElement('ol');
    list.className = 'jp-ContinuumWorkflows-steps';
    steps.forEach((step, index) => list.append(this._step(step, index)));
    this.node.append(list);
  }

  private _step(step: IChainStep, index: number): HTMLElement {
    const item = document.createElement('li');
    item.dataset.step = step.name;
    const title = document.createElement('span');
    const { site, partition } = step.request.resources;
    const sweep = step.request.sweep ? ' · sweep' : '';
    title.textContent = `${step.name} · ${step.request.path} · ${site} › ${partition}${sweep}`;
    item.append(title);
    const earlier = this._model.steps.slice(0, index);
    if (earlier.length > 0) {
      const after = document.createElement('span');
      after.className = 'jp-ContinuumWorkflows-after';
      after.append(' after: ');
      for (const other of earlier) {
        const box = document.createElement('input');
        box.type = 'checkbox';
        box.name = `after.${step.name}`;
        box.value = other.name;
        box.checked = step.after.includes(other.name);
        box.addEventListener('change', () => {
          const chosen = Array.from(
            item.querySelectorAll<HTMLInputElement>(`input[name="after.${step.name}"]:checked`)
          ).map(b => b.value);
          this._model.setAfter(index, chosen);
        });
        const label = document.createElement('label');
        label.append(box, ` ${other.name} `);
        after.append(label);
      }
      item.append(after);
    }
    const change = (act: () => void) => () => {
      this._model.name = this.getValue().name;
      act();
      this.render();
    };
    item.append(
      button(
        'Up',
        'jp-mod-styled',
        'up',
        change(() => this._model.move(index, -1))
      ),
      button(
        'Down',
        'jp-mod-styled',
        'down',
        change(() => this._model.move(index, 1))
      ),
      button(
        'Remove',
        'jp-mod-styled jp-mod-warn',
        'remove',
        change(() => this._model.remove(index))
      )
    );
    return item;
  }

  private _nameInput = document.createElement('input');
}

/**
 * One step's settings: the *Run as batch job* form for `path` (resources, parameters from its
 * parameters cell, sweep); its name is the step's. Null when cancelled.
 *
 * @param api - the server extension's batch-run routes
 * @param path - the step's notebook
 * @param taken - the names of the steps so far
 */
export async function stepDialog(
  api: IWorkflowsAPI,
  path: string,
  taken: string[]
): Promise<{ name?: string; request: ISubmitRequest } | null> {
  return notebookDialog<{ name?: string; request: ISubmitRequest }>(
    api,
    path,
    `Step ${taken.length + 1}: ${path}`,
    async (checked, values) => {
      const name = values.name.trim();
      if (name && (!STEP_NAME.test(name) || taken.includes(name))) {
        return { errors: { name: 'A new step name: lowercase letters, digits and "-".' } };
      }
      // the run form's name is the step's, not a run's
      const request = { ...checked };
      delete request.name;
      return { result: { name: name || undefined, request } };
    },
    {
      intro: `${path}: a step of the workflow, named by "Run name" (or after the notebook).`,
      label: 'Add step'
    }
  );
}

/**
 * *Workflow…*: build a chain of notebook steps (the first: `path`), then save it as a workflow
 * file next to its first notebook and, with *Run*, submit it.
 *
 * @param api - the server extension's batch-run routes
 * @param helpers - how a step's notebook is chosen
 * @param path - the first step's notebook (none: start empty)
 * @returns the saved file (and the workflow if run), or null when cancelled
 */
export async function chainDialog(
  api: IWorkflowsAPI,
  helpers: IChainDialogHelpers,
  path: string | null
): Promise<IChainResult | null> {
  const model = new ChainModel();
  let pending = path;
  let problems: string[] = [];
  for (;;) {
    if (pending) {
      const step = await stepDialog(
        api,
        pending,
        model.steps.map(s => s.name)
      );
      if (step) {
        model.add(step.request, undefined, step.name);
        if (!model.name) {
          model.name = `${model.steps[0].name}-workflow`;
        }
      }
      pending = null;
    }
    const answer = await showDialog({
      title: 'Workflow',
      body: new ChainForm(model, problems),
      buttons: [
        Dialog.cancelButton(),
        Dialog.createButton({ label: ADD }),
        Dialog.createButton({ label: SAVE }),
        Dialog.okButton({ label: RUN })
      ]
    });
    if (!answer.button.accept || answer.value === null) {
      return null;
    }
    model.name = answer.value.name;
    if (answer.button.label === ADD) {
      const last = model.steps[model.steps.length - 1]?.request.path ?? path ?? '';
      pending = await helpers.pickNotebook(last);
      problems = [];
      continue;
    }
    problems = model.problems();
    if (problems.length > 0) {
      continue;
    }
    const target = workflowPath(model.steps[0].request.path, model.name);
    const saved = await refusedAsProblem(() => api.saveWorkflow(target, model.toDocument()));
    if ('errors' in saved) {
      problems = Object.values(saved.errors);
      continue;
    }
    const workflow = answer.button.label === RUN ? await api.submitWorkflow(saved.result) : null;
    return { path: saved.result, workflow };
  }
}
