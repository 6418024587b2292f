import { IEstimate } from '@continuum-hub/common';
import { acceptDialog, dismissDialog, waitForDialog } from '@jupyterlab/testutils';

import { IClusterDialogAPI, newClusterDialog } from '../cluster-dialog';
import { IOptionField } from '../cluster-form';
import { find, SPEC } from './fake-api';

/** Three of the gateway's options are enough here. */
const FIELDS = SPEC.filter(f => ['site', 'worker_gpus', 'name'].includes(f.field));

/** An error as `requestAPI` throws it for an answer with `status`. */
function refusal(status: number, message: string): Error {
  return Object.assign(new Error(message), { response: { status } });
}

/** The gateway's options; `create` answers from `answers`, in turn. */
class FakeDialogAPI implements IClusterDialogAPI {
  constructor(private answers: (string | Error)[]) {}
  created: Record<string, unknown>[] = [];
  async options(): Promise<IOptionField[]> {
    return FIELDS;
  }
  async create(options: Record<string, unknown>): Promise<string> {
    this.created.push(options);
    const answer = this.answers.shift();
    if (answer instanceof Error || answer === undefined) {
      throw answer ?? new Error('no answer');
    }
    return answer;
  }
  async estimate(): Promise<IEstimate> {
    throw new Error('no estimate here');
  }
}

/** The open dialog's form. */
function form(): HTMLElement {
  return find(document.body, '.jp-Dialog .jp-ContinuumClusterForm');
}

describe('newClusterDialog', () => {
  it("checks the values, shows the gateway's refusal verbatim and keeps what was typed", async () => {
    const api = new FakeDialogAPI([
      refusal(400, "Dask Gateway: you already have an active cluster named 'mine'"),
      'a1b2'
    ]);
    const done = newClusterDialog(api, ['mine'], 'beta');
    await waitForDialog();
    expect(find<HTMLSelectElement>(form(), 'select[name="site"]').value).toBe('beta');
    find<HTMLInputElement>(form(), 'input[name="name"]').value = 'my cluster';
    await acceptDialog();
    // refused here: the gateway's message, and nothing sent
    await waitForDialog();
    expect(find(form(), '#jp-ContinuumClusterForm-name-error').textContent).toContain(
      "not 'my cluster'"
    );
    expect(api.created).toEqual([]);
    find<HTMLInputElement>(form(), 'input[name="name"]').value = 'mine';
    await acceptDialog();
    await waitForDialog();
    expect(find(form(), '.jp-ContinuumClusterForm-refusal').textContent).toBe(
      "Dask Gateway: you already have an active cluster named 'mine'"
    );
    expect(find<HTMLInputElement>(form(), 'input[name="name"]').value).toBe('mine');
    find<HTMLInputElement>(form(), 'input[name="name"]').value = 'other';
    await acceptDialog();
    expect(await done).toBe('a1b2');
    expect(api.created).toEqual([
      { site: 'beta', worker_gpus: 0, name: 'mine' },
      { site: 'beta', worker_gpus: 0, name: 'other' }
    ]);
  });

  it('returns null when cancelled and throws what is not a refusal', async () => {
    const cancelled = newClusterDialog(new FakeDialogAPI([]), []);
    await dismissDialog();
    expect(await cancelled).toBeNull();
    const failed = newClusterDialog(new FakeDialogAPI([refusal(502, 'gateway down')]), []);
    await acceptDialog();
    await expect(failed).rejects.toThrow('gateway down');
  });
});
