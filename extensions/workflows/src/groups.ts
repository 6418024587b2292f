import { IRun, IWorkflow } from './tokens';

/**
 * A row group of the *Batch runs* panel: a workflow with its steps' runs, or a run alone.
 */
export type PanelEntry = { workflow: IWorkflow; runs: IRun[] } | { run: IRun };

/**
 * The panel's entries: runs keep their order (newest first), except that a workflow's runs
 * are gathered under the workflow, where its newest run stands, in the order of its steps (a
 * run the workflow no longer names, e.g. an earlier scheduled round, after them). A run of a
 * workflow not (yet) listed stands alone.
 *
 * @param runs - the runs, newest first
 * @param workflows - the user's workflows
 */
export function groupRuns(runs: IRun[], workflows: IWorkflow[]): PanelEntry[] {
  const known = new Map(workflows.map(workflow => [workflow.id, workflow]));
  const groups = new Map<string, { workflow: IWorkflow; runs: IRun[] }>();
  const entries: PanelEntry[] = [];
  for (const run of runs) {
    const workflow = run.workflow_id ? known.get(run.workflow_id) : undefined;
    if (!workflow) {
      entries.push({ run });
      continue;
    }
    let group = groups.get(workflow.id);
    if (!group) {
      group = { workflow, runs: [] };
      groups.set(workflow.id, group);
      entries.push(group);
    }
    group.runs.push(run);
  }
  for (const group of groups.values()) {
    const order = Object.values(group.workflow.steps);
    const rank = (run: IRun) => {
      const index = order.indexOf(run.id);
      return index < 0 ? order.length : index;
    };
    group.runs.sort((a, b) => rank(a) - rank(b)); // stable: the rest stay newest first
  }
  return entries;
}
