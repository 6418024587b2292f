import { IOptionField } from '../cluster-form';
import { IClusterInfo, IClusterList, IClustersAPI } from '../tokens';

export function cluster(overrides: Partial<IClusterInfo> = {}): IClusterInfo {
  return {
    name: 'a1b2c3d4e5f6a7b8c9d0',
    status: 'running',
    workers: 1,
    threads: 1,
    memory_bytes: 2 ** 30,
    start_time: '2026-11-21T08:00:00Z',
    age_seconds: 90,
    dashboard_link: 'http://gw/clusters/a1b2c3d4e5f6a7b8c9d0/status',
    options: {},
    ...overrides
  };
}

/**
 * A stand-in for the server extension: records the calls, answers from `state`.
 */
export class FakeAPI implements IClustersAPI {
  state: IClusterList = { clusters: [cluster()], refresh_seconds: 10 };
  failure: Error | null = null;
  calls: string[] = [];

  async list(): Promise<IClusterList> {
    this.calls.push('list');
    if (this.failure) {
      throw this.failure;
    }
    return this.state;
  }
  async create(): Promise<string> {
    this.calls.push('create');
    return 'new';
  }
  async scale(name: string, count: number): Promise<string | null> {
    this.calls.push(`scale ${name} ${count}`);
    if (count > 3) {
      return 'Scaling to 3 instead.';
    }
    return null;
  }
  async stop(name: string): Promise<void> {
    this.calls.push(`stop ${name}`);
    if (this.failure) {
      throw this.failure;
    }
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

/** One field of the gateway's specification. */
function option(
  field: string,
  label: string,
  value: unknown,
  spec: IOptionField['spec']
): IOptionField {
  return { field, label, default: value, spec };
}

/** The specification the gateway gives alice (vo.radio: alpha and beta, GPUs on beta). */
export const SPEC: IOptionField[] = [
  option('site', 'Site', 'alpha', { type: 'select', options: ['alpha', 'beta'] }),
  option('partition', 'Partition', 'default', {
    type: 'select',
    options: ['default', 'gpu', 'interactive']
  }),
  option('worker_cores', 'Cores per worker', 1, { type: 'int', min: 1, max: 16 }),
  option('worker_gpus', 'GPUs per worker', 0, { type: 'int', min: 0, max: 2 }),
  option('walltime_minutes', 'Walltime', 60, { type: 'int', min: 1, max: 480 }),
  option('adaptive_minimum', 'Adaptive min', 0, { type: 'int', min: 0, max: 4 }),
  option('adaptive_maximum', 'Adaptive max', 0, { type: 'int', min: 0, max: 4 }),
  option('idle_timeout_minutes', 'Idle', 30, { type: 'float', min: 0.25, max: 30 }),
  option('name', 'Name', '', { type: 'string' }),
  option('extra', 'Mapping', {}, { type: 'mapping' })
];
