import { RunsModel } from '../runs-model';
import { IRunsPanelActions, RunsPanel } from '../runs-panel';
import { FakeAPI, find, member, run, settle, sweepRun } from './fake-api';

const NOW = () => Date.parse('2026-11-21T08:08:00Z');

function actions(log: string[]): IRunsPanelActions {
  return {
    open: async (r, m) => {
      log.push(`open ${r.id} ${m}`);
    },
    download: async r => {
      log.push(`download ${r.id}`);
    },
    cancel: async r => {
      log.push(`cancel ${r.id}`);
    },
    rerun: async r => {
      log.push(`rerun ${r.id}`);
    },
    revoke: async c => {
      log.push(`revoke ${c.id}`);
    }
  };
}

function field(panel: RunsPanel, id: string, key: string): string | null {
  return find(panel.node, `tr[data-run="${id}"] td[data-field="${key}"]`).textContent;
}

function buttons(panel: RunsPanel, selector: string): string[] {
  return Array.from(panel.node.querySelectorAll<HTMLButtonElement>(`${selector} button`)).map(
    b => b.dataset.action ?? ''
  );
}

describe('RunsPanel', () => {
  it('shows each run’s live state, place and actions', async () => {
    const api = new FakeAPI();
    api.state.runs = [
      run(),
      run({
        id: 'r-queued000000',
        state: 'queued',
        reason: 'Priority',
        members: [member({ state: 'queued', cell: null, cells: null })]
      }),
      run({
        id: 'r-failed000000',
        state: 'failed',
        members: [member({ state: 'failed', cell: 4, cells: 7, reason: 'NameError: x' })]
      }),
      sweepRun(),
      run({
        id: 'r-step00000000',
        step: 'simulate',
        workflow_id: 'w-1',
        based_on: 'r-0123456789ab'
      })
    ];
    const model = new RunsModel(api);
    const log: string[] = [];
    const panel = new RunsPanel(model, actions(log), NOW);
    await model.refresh();
    expect(field(panel, 'r-0123456789ab', 'state')).toBe('running · cell 3/7');
    expect(field(panel, 'r-0123456789ab', 'where')).toBe('alpha › batch');
    expect(field(panel, 'r-0123456789ab', 'age')).toBe('10 minutes ago');
    expect(field(panel, 'r-step00000000', 'name')).toBe('simulate · analysis.ipynb');
    expect(find(panel.node, 'tr[data-run="r-step00000000"] td[data-field="name"]').title).toBe(
      'r-step00000000, step of w-1, re-run of r-0123456789ab'
    );
    expect(field(panel, 'r-queued000000', 'state')).toBe('queued (Priority)');
    expect(field(panel, 'r-failed000000', 'state')).toBe('failed at cell 4/7: NameError: x');
    expect(buttons(panel, 'tr[data-run="r-0123456789ab"]')).toEqual(['cancel', 'rerun']);
    expect(buttons(panel, 'tr[data-run="r-failed000000"]')).toEqual(['open', 'download', 'rerun']);
    expect(buttons(panel, 'tr[data-run="r-sweep0000000"]')).toEqual(['compare', 'cancel', 'rerun']);
    find<HTMLButtonElement>(
      panel.node,
      'tr[data-run="r-failed000000"] [data-action="download"]'
    ).click();
    await settle();
    expect(log).toEqual(['download r-failed000000']);
    model.dispose();
  });

  it('shows a workflow’s runs under a row of the workflow, in the order of its steps', async () => {
    const api = new FakeAPI();
    api.state.runs = [
      run({ id: 'r-second000000', step: 'second', workflow_id: 'w-1', state: 'pending' }),
      run({ id: 'r-alone0000000' }),
      run({ id: 'r-first0000000', step: 'first', workflow_id: 'w-1', state: 'failed' })
    ];
    api.flows = [
      {
        id: 'w-1',
        owner: 'alice',
        name: 'scan',
        state: 'failed',
        reason: 'step first failed',
        steps: { first: 'r-first0000000', second: 'r-second000000' },
        schedule: null,
        next_run: null,
        created: '2026-11-21T07:58:00Z'
      }
    ];
    const model = new RunsModel(api);
    const panel = new RunsPanel(model, actions([]), NOW);
    await model.refresh();
    const rows = Array.from(panel.node.querySelectorAll<HTMLElement>('tbody tr')).map(
      row => row.dataset.workflow ?? row.dataset.run
    );
    expect(rows.slice(0, 4)).toEqual(['w-1', 'r-first0000000', 'r-second000000', 'r-alone0000000']);
    const head = find(panel.node, 'tr[data-workflow="w-1"]');
    expect(find(head, 'td[data-field="name"]').textContent).toBe('Workflow scan');
    expect(find(head, 'td[data-field="state"]').textContent).toBe('failed: step first failed');
    expect(find(head, 'td[data-field="where"]').textContent).toBe('2 steps');
    expect(find(panel.node, 'tr[data-run="r-first0000000"]').className).toBe(
      'jp-ContinuumWorkflows-step'
    );
    model.dispose();
  });

  it('compares a sweep’s members and opens one of them', async () => {
    const api = new FakeAPI();
    api.state.runs = [sweepRun()];
    const model = new RunsModel(api);
    const log: string[] = [];
    const panel = new RunsPanel(model, actions(log), NOW);
    await model.refresh();
    find<HTMLButtonElement>(panel.node, 'button[data-action="compare"]').click();
    expect(panel.comparing).toBe('r-sweep0000000');
    const table = find(panel.node, 'table[data-compare="r-sweep0000000"]');
    const rows = Array.from(table.querySelectorAll('tbody tr')).map(row =>
      Array.from(row.querySelectorAll('td'))
        .slice(0, 5)
        .map(td => td.textContent)
    );
    expect(rows).toEqual([
      ['0', 'A', '0.1', 'done', 'alpha-node1'],
      ['1', 'A', '0.2', 'running · cell 2/7', 'alpha-node1'],
      ['2', 'A', '0.4', 'failed at cell 4/7: ZeroDivisionError', 'alpha-node1']
    ]);
    find<HTMLButtonElement>(table, 'tr[data-member="2"] button[data-action="open"]').click();
    await settle();
    expect(log).toEqual(['open r-sweep0000000 2']);
    // the comparison stays across refreshes, and closes
    await model.refresh();
    expect(panel.node.querySelector('table[data-compare]')).not.toBeNull();
    find<HTMLButtonElement>(panel.node, 'button[data-action="close-compare"]').click();
    expect(panel.node.querySelector('table[data-compare]')).toBeNull();
    model.dispose();
  });

  it('lists the credentials with revoke, and shows action failures', async () => {
    const api = new FakeAPI();
    api.creds = [
      { ...api.creds[0] },
      { ...api.creds[0], id: 'c-2', run_id: 'r-old', revoked: true }
    ];
    const model = new RunsModel(api);
    const log: string[] = [];
    const panel = new RunsPanel(
      model,
      {
        ...actions(log),
        cancel: async () => {
          throw new Error('not your run');
        }
      },
      NOW
    );
    await model.refresh();
    const active = find(panel.node, 'tr[data-credential="c-1"]');
    expect(active.textContent).toContain('active');
    expect(find(panel.node, 'tr[data-credential="c-2"]').textContent).toContain('revoked');
    expect(buttons(panel, 'tr[data-credential="c-2"]')).toEqual([]);
    find<HTMLButtonElement>(active, 'button[data-action="revoke"]').click();
    find<HTMLButtonElement>(panel.node, 'button[data-action="cancel"]').click();
    await settle();
    expect(log).toEqual(['revoke c-1']);
    expect(find(panel.node, '.jp-ContinuumWorkflows-error').textContent).toBe('not your run');
    model.dispose();
  });

  it('says when there are no runs, or when the service cannot be reached', async () => {
    const api = new FakeAPI();
    api.state.runs = [];
    const model = new RunsModel(api);
    const panel = new RunsPanel(model, actions([]), NOW);
    expect(find(panel.node, '.jp-ContinuumWorkflows-empty').textContent).toContain('Asking');
    await model.refresh();
    expect(find(panel.node, '.jp-ContinuumWorkflows-empty').textContent).toContain(
      'No batch runs yet'
    );
    api.failure = new Error('The batch workflows service cannot be reached');
    await model.refresh();
    expect(find(panel.node, '.jp-ContinuumWorkflows-error').hidden).toBe(false);
    model.dispose();
  });
});
