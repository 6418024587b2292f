import { IEstimate } from '@continuum-hub/common';

import {
  ICredential,
  INotebookParameter,
  IParametersInfo,
  IRun,
  IRunList,
  IRunMember,
  IRunOptions,
  ISubmitRequest,
  IWorkflow,
  IWorkflowsAPI
} from '../tokens';

export function member(overrides: Partial<IRunMember> = {}): IRunMember {
  return {
    index: 0,
    parameters: {},
    state: 'running',
    reason: '',
    node: 'alpha-node1',
    cell: 3,
    cells: 7,
    started: '2026-11-21T08:00:00Z',
    ended: null,
    ...overrides
  };
}

export function run(overrides: Partial<IRun> = {}): IRun {
  return {
    id: 'r-0123456789ab',
    owner: 'alice',
    name: 'analysis.ipynb',
    workflow_id: null,
    step: null,
    state: 'running',
    reason: '',
    notebook: { path: 'work/analysis.ipynb', sha256: 'ab' },
    parameters: { n: 3 },
    sweep: null,
    max_parallel: null,
    resources: { site: 'alpha', partition: 'batch', cores: 1 },
    members: [member()],
    job_id: '42',
    created: '2026-11-21T07:58:00Z',
    submitted: '2026-11-21T07:58:00Z',
    started: '2026-11-21T08:00:00Z',
    ended: null,
    based_on: null,
    credential_id: 'c-1',
    ...overrides
  };
}

export function sweepRun(): IRun {
  return run({
    id: 'r-sweep0000000',
    name: 'scan',
    state: 'running',
    parameters: { label: 'A' },
    sweep: { grid: { rate: [0.1, 0.2, 0.4] } },
    members: [
      member({ index: 0, parameters: { rate: 0.1 }, state: 'done', cell: 7 }),
      member({ index: 1, parameters: { rate: 0.2 }, state: 'running', cell: 2 }),
      member({
        index: 2,
        parameters: { rate: 0.4 },
        state: 'failed',
        cell: 4,
        reason: 'ZeroDivisionError'
      })
    ]
  });
}

export const OPTIONS: IRunOptions = {
  sites: [
    {
      name: 'alpha',
      label: 'Alpha HPC',
      partitions: [
        {
          name: 'batch',
          label: 'Batch',
          max_cores: 4,
          max_memory_gb: 8,
          max_gpus: 0,
          max_walltime: '4:00:00',
          default_walltime: '1:00'
        }
      ],
      environments: ['default', { name: 'gpu-py', label: 'GPU Python' }]
    },
    {
      name: 'beta',
      label: 'Beta',
      partitions: [
        {
          name: 'gpu',
          label: 'GPU',
          max_cores: 8,
          max_memory_gb: 32,
          max_gpus: 2,
          max_walltime: 120,
          default_walltime: 60
        }
      ],
      environments: ['default']
    }
  ],
  limits: { max_sweep_members: 10 }
};

export const PARAMETERS: INotebookParameter[] = [
  { name: 'n', type: 'int', default: '3', value: 3, known: true, help: '' },
  { name: 'rate', type: 'float', default: '0.5', value: 0.5, known: true, help: '' },
  { name: 'label', type: 'str', default: '"run A"', value: 'run A', known: true, help: '' },
  { name: 'flags', type: 'list', default: '[1, 2]', value: [1, 2], known: true, help: '' },
  { name: 'verbose', type: 'bool', default: 'False', value: false, known: true, help: '' },
  { name: 'shape', type: 'any', default: 'np.arange(3)', value: null, known: false, help: '' }
];

/**
 * A stand-in for the server extension: records the calls, answers from its fields.
 */
export class FakeAPI implements IWorkflowsAPI {
  state: IRunList = { runs: [run()], refresh_seconds: 10 };
  creds: ICredential[] = [
    {
      id: 'c-1',
      owner: 'alice',
      run_id: 'r-0123456789ab',
      created: '2026-11-21T07:58:00Z',
      expires: '2026-11-28T07:58:00Z',
      revoked: false
    }
  ];
  flows: IWorkflow[] = [];
  failure: Error | null = null;
  credentialsFailure: Error | null = null;
  calls: string[] = [];
  submitted: ISubmitRequest[] = [];
  estimates: Record<string, string>[] = [];

  async options(): Promise<IRunOptions> {
    return OPTIONS;
  }
  async parameters(path: string): Promise<IParametersInfo> {
    return { path, cell: true, parameters: PARAMETERS };
  }
  async estimate(query: Record<string, string>): Promise<IEstimate> {
    this.estimates.push(query);
    return {
      site: query.site,
      partition: query.partition,
      start_time: null,
      wait_seconds: 120,
      message: '',
      energy_kwh_max: 0.1,
      gco2e_max: 5
    };
  }
  async list(): Promise<IRunList> {
    this.calls.push('list');
    if (this.failure) {
      throw this.failure;
    }
    return this.state;
  }
  async submit(request: ISubmitRequest): Promise<IRun> {
    this.submitted.push(request);
    return run({ id: 'r-new000000000', state: 'queued' });
  }
  async submitWorkflow(path: string): Promise<IWorkflow> {
    this.calls.push(`workflow ${path}`);
    return {
      id: 'w-0123456789ab',
      owner: 'alice',
      name: 'scan',
      state: 'pending',
      reason: '',
      steps: { first: 'r-0123456789ab' },
      schedule: null,
      next_run: null,
      created: '2026-11-21T07:58:00Z'
    };
  }
  async workflows(): Promise<IWorkflow[]> {
    return this.flows;
  }
  async cancel(id: string): Promise<IRun> {
    this.calls.push(`cancel ${id}`);
    return run({ state: 'cancelled' });
  }
  async rerun(id: string, parameters?: Record<string, unknown>): Promise<IRun> {
    this.calls.push(`rerun ${id} ${JSON.stringify(parameters)}`);
    return run({ id: 'r-again0000000', based_on: id });
  }
  async open(id: string, member?: number): Promise<string> {
    this.calls.push(`open ${id} ${member}`);
    return `continuum-runs/${id}/output.ipynb`;
  }
  saved: [string, object][] = [];
  async saveWorkflow(path: string, workflow: object): Promise<string> {
    this.calls.push(`save ${path}`);
    this.saved.push([path, workflow]);
    return path;
  }
  archiveUrl(id: string): string {
    return `/continuum/workflows/runs/archive?id=${id}`;
  }
  async credentials(): Promise<ICredential[]> {
    if (this.credentialsFailure) {
      throw this.credentialsFailure;
    }
    return this.creds;
  }
  async revoke(id: string): Promise<void> {
    this.calls.push(`revoke ${id}`);
  }
}

/**
 * The element matching `selector` below `root`; fails the test when there is none.
 */
export function find<T extends Element = HTMLElement>(root: Element, selector: string): T {
  const found = root.querySelector<T>(selector);
  if (found === null) {
    throw new Error(`nothing matches ${selector}`);
  }
  return found;
}

export async function settle(): Promise<void> {
  await new Promise(resolve => setTimeout(resolve, 0));
}
