import { groupRuns } from '../groups';
import { IWorkflow } from '../tokens';
import { run } from './fake-api';

function workflow(overrides: Partial<IWorkflow> = {}): IWorkflow {
  return {
    id: 'w-1',
    owner: 'alice',
    name: 'energy-scan',
    state: 'running',
    reason: '',
    steps: { simulate: 'r-sim', summarize: 'r-sum' },
    schedule: null,
    next_run: null,
    created: '2026-11-21T07:58:00Z',
    ...overrides
  };
}

describe('groupRuns', () => {
  it('gathers a workflow’s runs under it, in the order of its steps', () => {
    const runs = [
      run({ id: 'r-new' }),
      run({ id: 'r-sum', workflow_id: 'w-1', step: 'summarize' }),
      run({ id: 'r-mid' }),
      run({ id: 'r-sim', workflow_id: 'w-1', step: 'simulate' }),
      run({ id: 'r-old-round', workflow_id: 'w-1', step: 'simulate' }),
      run({ id: 'r-unlisted', workflow_id: 'w-2', step: 'one' })
    ];
    const entries = groupRuns(runs, [workflow()]);
    expect(
      entries.map(e =>
        'run' in e ? e.run.id : `${e.workflow.id}: ${e.runs.map(r => r.id).join(' ')}`
      )
    ).toEqual(['r-new', 'w-1: r-sim r-sum r-old-round', 'r-mid', 'r-unlisted']);
  });

  it('leaves runs alone when there are no workflows', () => {
    const runs = [run({ id: 'r-a' }), run({ id: 'r-b', workflow_id: 'w-9' })];
    expect(groupRuns(runs, []).map(e => ('run' in e ? e.run.id : ''))).toEqual(['r-a', 'r-b']);
  });
});
