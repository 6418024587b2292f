import { ClustersModel } from '../clusters-model';
import { ClustersPanel, IClustersPanelActions } from '../clusters-panel';
import { cluster, FakeAPI, find } from './fake-api';

function actions(log: string[]): IClustersPanelActions {
  return {
    create: async () => {
      log.push('create');
    },
    scale: async (name, count) => {
      log.push(`scale ${name} ${count}`);
    },
    stop: async name => {
      log.push(`stop ${name}`);
    }
  };
}

function field(panel: ClustersPanel, name: string, key: string): string | null {
  return find(panel.node, `tr[data-cluster="${name}"] td[data-field="${key}"]`).textContent;
}

async function settle(): Promise<void> {
  await new Promise(resolve => setTimeout(resolve, 0));
}

describe('ClustersPanel', () => {
  it('shows one row per cluster with workers, resources, age and dashboard', async () => {
    const api = new FakeAPI();
    api.state.clusters = [
      cluster({ name: 'one', workers: 2, threads: 2, memory_bytes: 2 ** 31, age_seconds: 125 }),
      cluster({
        name: 'two',
        status: 'pending',
        workers: null,
        threads: null,
        memory_bytes: null,
        dashboard_link: null
      })
    ];
    const model = new ClustersModel(api);
    const panel = new ClustersPanel(model, actions([]));
    await model.refresh();
    expect(field(panel, 'one', 'workers')).toBe('2');
    expect(field(panel, 'one', 'resources')).toBe('2 cores · 2.0 GiB');
    expect(field(panel, 'one', 'age')).toBe('2 minutes ago');
    const link = find<HTMLAnchorElement>(
      panel.node,
      'tr[data-cluster="one"] a[data-action="dashboard"]'
    );
    expect(link.href).toBe('http://gw/clusters/a1b2c3d4e5f6a7b8c9d0/status');
    expect(link.target).toBe('_blank');
    expect(field(panel, 'two', 'status')).toBe('pending');
    const pendingScale = find<HTMLButtonElement>(
      panel.node,
      'tr[data-cluster="two"] button[data-action="scale"]'
    );
    expect(pendingScale.disabled).toBe(true);
    expect(find<HTMLAnchorElement>(panel.node, 'tr[data-cluster="two"] a').hidden).toBe(true);

    api.state = { clusters: [cluster({ name: 'two' })], refresh_seconds: 10 };
    await model.refresh();
    expect(panel.node.querySelectorAll('tbody tr')).toHaveLength(1);
    expect(field(panel, 'two', 'status')).toBe('running');
  });

  it('scales to the typed count and shuts down through the actions', async () => {
    const log: string[] = [];
    const model = new ClustersModel(new FakeAPI());
    const panel = new ClustersPanel(model, actions(log));
    await model.refresh();
    const row = find(panel.node, 'tr[data-cluster="a1b2c3d4e5f6a7b8c9d0"]');
    find<HTMLInputElement>(row, 'input').value = '4';
    find<HTMLButtonElement>(row, 'button[data-action="scale"]').click();
    find<HTMLButtonElement>(row, 'button[data-action="stop"]').click();
    find<HTMLButtonElement>(panel.node, 'button[data-action="create"]').click();
    await settle();
    expect(log).toEqual(['scale a1b2c3d4e5f6a7b8c9d0 4', 'stop a1b2c3d4e5f6a7b8c9d0', 'create']);
  });

  it('refuses a count that is not a whole number, without calling the gateway', async () => {
    const log: string[] = [];
    const model = new ClustersModel(new FakeAPI());
    const panel = new ClustersPanel(model, actions(log));
    await model.refresh();
    find<HTMLInputElement>(panel.node, 'input').value = '-2';
    find<HTMLButtonElement>(panel.node, 'button[data-action="scale"]').click();
    await settle();
    expect(log).toEqual([]);
    expect(find(panel.node, '.jp-ContinuumClusters-error').textContent).toContain('whole number');
  });

  it('says clearly when the gateway cannot be reached', async () => {
    const api = new FakeAPI();
    api.failure = new Error('The Dask Gateway at http://gw cannot be reached: refused');
    const model = new ClustersModel(api);
    const panel = new ClustersPanel(model, actions([]));
    await model.refresh();
    const error = find<HTMLElement>(panel.node, '.jp-ContinuumClusters-error');
    expect(error.hidden).toBe(false);
    expect(error.textContent).toContain('cannot be reached');
  });

  it('shows an action failure', async () => {
    const model = new ClustersModel(new FakeAPI());
    const panel = new ClustersPanel(model, {
      ...actions([]),
      create: async () => {
        throw new Error('Dask Gateway: worker_cores must be <= 2');
      }
    });
    await model.refresh();
    find<HTMLButtonElement>(panel.node, 'button[data-action="create"]').click();
    await settle();
    expect(find(panel.node, '.jp-ContinuumClusters-error').textContent).toContain('worker_cores');
  });

  it('lists a cluster by its readable name, the id on hover, and copies the connecting code', async () => {
    const id = 'f'.repeat(32);
    const api = new FakeAPI();
    api.state.clusters = [cluster({ name: id, options: { name: 'beta-gpu-2' } })];
    const copied: string[] = [];
    Object.assign(navigator, {
      clipboard: { writeText: async (text: string) => void copied.push(text) }
    });
    const model = new ClustersModel(api);
    const panel = new ClustersPanel(model, actions([]));
    await model.refresh();
    const label = find(panel.node, `tr[data-cluster="${id}"] .jp-ContinuumClusters-name`);
    expect(label.textContent).toBe('beta-gpu-2');
    expect(label.title).toBe(id);
    find<HTMLButtonElement>(
      panel.node,
      `tr[data-cluster="${id}"] button[data-action="copy"]`
    ).click();
    await settle();
    expect(copied).toEqual([
      `from dask_gateway import Gateway\ncluster = Gateway().connect("${id}")`
    ]);
  });
});
