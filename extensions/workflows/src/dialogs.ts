import { Dialog, showDialog } from '@jupyterlab/apputils';
import { ServerConnection } from '@jupyterlab/services';

import { IFormValues, initialValues, validateForm, validateParameters } from './form';
import { RunForm } from './run-form';
import { INotebookParameter, IRun, IRunOptions, ISubmitRequest, IWorkflowsAPI } from './tokens';
import { typeOf, valueText } from './values';

export type Checked<T> = { result: T } | { errors: Record<string, string> };

/**
 * Send a checked request; the service's refusal (a 4xx: invalid parameters, a partition not
 * allowed, …) becomes the form's problem to show, anything else is thrown.
 *
 * @param send - the request
 */
export async function refusedAsProblem<T>(send: () => Promise<T>): Promise<Checked<T>> {
  try {
    return { result: await send() };
  } catch (error) {
    const status = error instanceof ServerConnection.ResponseError ? error.response.status : 0;
    if (status >= 400 && status < 500) {
      return { errors: { service: (error as Error).message } };
    }
    throw error;
  }
}

/**
 * Show the form until its values are valid and accepted, or the user cancels.
 *
 * @param title - the dialog's title
 * @param form - builds the form for the current values and problems
 * @param check - validates the values (and sends them); problems by field, or the result
 * @param label - the accepting button's label
 * @returns the result, or null when cancelled
 */
async function untilValid<T>(
  title: string,
  values: IFormValues,
  form: (values: IFormValues, errors: Record<string, string>) => RunForm,
  check: (values: IFormValues) => Promise<Checked<T>>,
  label = 'Submit'
): Promise<T | null> {
  let errors: Record<string, string> = {};
  for (;;) {
    const answer = await showDialog({
      title,
      body: form(values, errors),
      buttons: [Dialog.cancelButton(), Dialog.okButton({ label })]
    });
    if (!answer.button.accept || answer.value === null) {
      return null;
    }
    values = answer.value;
    const checked = await check(values);
    if ('result' in checked) {
      return checked.result;
    }
    errors = checked.errors;
  }
}

/**
 * The *Run as batch job* form for a notebook until its values are valid and `finish` accepts
 * the request they make (or the user cancels).
 *
 * @param api - the server extension's batch-run routes
 * @param path - the notebook's path relative to the server's root
 * @param title - the dialog's title
 * @param finish - what is done with the checked request (its refusal is shown in the form)
 * @param extra - the form's first line, the accepting button's label, the site preselected
 */
export async function notebookDialog<T>(
  api: IWorkflowsAPI,
  path: string,
  title: string,
  finish: (request: ISubmitRequest, values: IFormValues) => Promise<Checked<T>>,
  extra: { intro?: string; label?: string; site?: string } = {}
): Promise<T | null> {
  const [options, info] = await Promise.all([api.options(), api.parameters(path)]);
  if (options.sites.length === 0) {
    throw new Error('You may not run batch jobs on any site.');
  }
  const note = info.cell
    ? undefined
    : 'This notebook has no cell tagged "parameters": it runs with the values it holds.';
  return untilValid(
    title,
    initialValues(options, info.parameters, extra.site),
    (values, errors) =>
      new RunForm({
        mode: 'submit',
        path,
        options,
        parameters: info.parameters,
        values,
        errors,
        note,
        intro: extra.intro,
        estimate: query => api.estimate(query)
      }),
    async values => {
      const checked = validateForm(path, values, info.parameters, options);
      return 'errors' in checked ? checked : finish(checked.request, values);
    },
    extra.label
  );
}

/**
 * *Run as batch job…*: ask for resources, parameters and a sweep, then submit the notebook.
 *
 * @param api - the server extension's batch-run routes
 * @param path - the notebook's path relative to the server's root
 * @param site - the site preselected (where the data are), if the user may use it
 * @returns the new run, or null when cancelled
 */
export async function submitDialog(
  api: IWorkflowsAPI,
  path: string,
  site = ''
): Promise<IRun | null> {
  return notebookDialog(
    api,
    path,
    `Run ${path} as a batch job`,
    request => refusedAsProblem(() => api.submit(request)),
    { site }
  );
}

/**
 * The parameters of an earlier run, typed from their values (a re-run knows no notebook).
 *
 * @param run - the earlier run
 */
export function runParameters(run: IRun): INotebookParameter[] {
  return Object.entries(run.parameters ?? {}).map(([name, value]) => ({
    name,
    type: typeOf(value),
    default: valueText(value),
    value,
    known: true,
    help: ''
  }));
}

/**
 * *Re-run*: the dialog pre-filled with the run's parameters; the new run (same snapshot and
 * resources) or null when cancelled.
 *
 * @param api - the server extension's batch-run routes
 * @param run - the run to repeat
 */
export async function rerunDialog(api: IWorkflowsAPI, run: IRun): Promise<IRun | null> {
  const parameters = runParameters(run);
  const empty: IRunOptions = { sites: [], limits: {} };
  const parametersOf = (values: IFormValues) => values.parameters;
  return untilValid(
    `Run ${run.name || run.id} again`,
    initialValues(empty, parameters),
    (values, errors) =>
      new RunForm({
        mode: 'rerun',
        path: run.notebook?.path ?? '',
        options: empty,
        parameters,
        values,
        errors
      }),
    async values => {
      const checked = validateParameters(parametersOf(values), parameters);
      if ('errors' in checked) {
        return checked;
      }
      return refusedAsProblem(() => api.rerun(run.id, checked.parameters));
    }
  );
}
