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
