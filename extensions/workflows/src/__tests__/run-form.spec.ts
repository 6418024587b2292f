import { IEstimate } from '@continuum-hub/common';

import { initialValues } from '../form';
import { ESTIMATE_DELAY, RunForm } from '../run-form';
import { FakeAPI, find, OPTIONS, PARAMETERS } from './fake-api';

function form(errors: Record<string, string> = {}, mode: 'submit' | 'rerun' = 'submit'): RunForm {
  return new RunForm({
    mode,
    path: 'work/analysis.ipynb',
    options: OPTIONS,
    parameters: PARAMETERS,
    values: initialValues(OPTIONS, PARAMETERS),
    errors
  });
}

function input(widget: RunForm, name: string): HTMLInputElement {
  return find<HTMLInputElement>(widget.node, `[name="${name}"]`);
}

describe('RunForm', () => {
  it('pre-fills the parameters with typed inputs', () => {
    const widget = form();
    expect(input(widget, 'parameters.n').type).toBe('number');
    expect(input(widget, 'parameters.n').value).toBe('3');
    expect(input(widget, 'parameters.label').value).toBe('run A');
    expect(input(widget, 'parameters.verbose').tagName).toBe('SELECT');
    expect(input(widget, 'parameters.verbose').value).toBe('false');
    expect(input(widget, 'parameters.shape').placeholder).toBe('np.arange(3)');
    const environments = Array.from(
      find<HTMLSelectElement>(widget.node, 'select[name="environment"]').options
    ).map(o => [o.textContent, o.value]);
    expect(environments).toEqual([
      ['default', 'default'],
      ['GPU Python', 'gpu-py']
    ]);
    expect(find(widget.node, '.jp-ContinuumWorkflows-limits').textContent).toBe(
      'At most 4 cores · 8 GB · 0 GPUs · walltime 4:00:00'
    );
  });

  it('counts the sweep’s members while values are typed', () => {
    const widget = form();
    const members = find(widget.node, '.jp-ContinuumWorkflows-members');
    expect(members.textContent).toBe('One run.');
    const sweep = input(widget, 'sweep.rate');
    sweep.value = '0.1, 0.2, 0.4';
    sweep.dispatchEvent(new Event('input'));
    input(widget, 'sweep.label').value = 'a, b';
    input(widget, 'sweep.label').dispatchEvent(new Event('input'));
    expect(members.textContent).toBe('A sweep of 6 members (one job array).');
  });

  it('gives back what was typed, the site and partition apart', () => {
    const widget = form();
    const where = find<HTMLSelectElement>(widget.node, 'select[name="where"]');
    where.value = 'beta/gpu';
    where.dispatchEvent(new Event('change'));
    input(widget, 'cores').value = '2';
    input(widget, 'parameters.n').value = '10';
    input(widget, 'sweep.rate').value = '1, 2';
    const values = widget.getValue();
    expect([values.site, values.partition, values.cores]).toEqual(['beta', 'gpu', '2']);
    expect(values.environment).toBe('default');
    expect(values.parameters.n).toBe('10');
    expect(values.sweep.rate).toBe('1, 2');
    expect(find(widget.node, '.jp-ContinuumWorkflows-limits').textContent).toContain('2 GPUs');
  });

  it('shows each problem beside its field, and only parameters for a re-run', () => {
    const widget = form({
      service: 'not allowed here',
      cores: 'Cores must be from 1 to 4',
      'sweep.n': '"x" is not a whole number'
    });
    const errors = Array.from(widget.node.querySelectorAll('.jp-ContinuumWorkflows-error')).map(
      e => e.textContent
    );
    expect(errors).toEqual([
      'not allowed here',
      'Cores must be from 1 to 4',
      '"x" is not a whole number'
    ]);
    const rerun = form({}, 'rerun');
    expect(rerun.node.querySelector('[name="cores"]')).toBeNull();
    expect(rerun.node.querySelector('[name="sweep.n"]')).toBeNull();
    expect(input(rerun, 'parameters.n').value).toBe('3');
  });

  describe('the estimate line', () => {
    beforeEach(() => jest.useFakeTimers());
    afterEach(() => jest.useRealTimers());

    function estimating(estimate: FakeAPI['estimate']): RunForm {
      return new RunForm({
        mode: 'submit',
        path: 'work/analysis.ipynb',
        options: OPTIONS,
        parameters: PARAMETERS,
        values: initialValues(OPTIONS, PARAMETERS),
        estimate
      });
    }

    it('shows the hub’s estimate of the resources, asked once typing stops', async () => {
      const api = new FakeAPI();
      const widget = estimating(query => api.estimate(query));
      const line = find(widget.node, '.jp-ContinuumWorkflows-estimate');
      await jest.advanceTimersByTimeAsync(0);
      expect(api.estimates).toEqual([
        {
          site: 'alpha',
          partition: 'batch',
          cores: '1',
          memory_gb: '2',
          gpus: '0',
          walltime: '1:00',
          environment: 'default'
        }
      ]);
      expect(line.textContent).toBe(
        'Expected start on alpha / batch: in about 2 min · at most 0.1 kWh, 5 g CO2e if used in full'
      );
      const where = find<HTMLSelectElement>(widget.node, 'select[name="where"]');
      where.value = 'beta/gpu';
      where.dispatchEvent(new Event('change', { bubbles: true }));
      for (const cores of ['2', '3']) {
        input(widget, 'cores').value = cores;
        input(widget, 'cores').dispatchEvent(new Event('input', { bubbles: true }));
        await jest.advanceTimersByTimeAsync(ESTIMATE_DELAY / 2);
      }
      expect(api.estimates).toHaveLength(1); // still typing
      await jest.advanceTimersByTimeAsync(ESTIMATE_DELAY);
      expect(api.estimates).toHaveLength(2);
      expect(api.estimates[1]).toMatchObject({ site: 'beta', partition: 'gpu', cores: '3' });
      expect(line.textContent).toMatch(/^Expected start on beta \/ gpu: in about 2 min/);
    });

    it('says why there is none, and drops an answer to an older question', async () => {
      const answers: ((estimate: IEstimate) => void)[] = [];
      const widget = estimating(() => new Promise<IEstimate>(resolve => answers.push(resolve)));
      const line = find(widget.node, '.jp-ContinuumWorkflows-estimate');
      await jest.advanceTimersByTimeAsync(0);
      expect(line.textContent).toBe('Asking the scheduler when this would start…');
      input(widget, 'gpus').value = '1';
      input(widget, 'gpus').dispatchEvent(new Event('input', { bubbles: true }));
      await jest.advanceTimersByTimeAsync(ESTIMATE_DELAY);
      const none = { site: 'alpha', partition: 'batch', start_time: null, wait_seconds: null };
      const impact = { energy_kwh_max: null, gco2e_max: null };
      answers[1]({ ...none, ...impact, message: 'site alpha did not answer' });
      await jest.advanceTimersByTimeAsync(0);
      answers[0]({ ...none, ...impact, wait_seconds: 0 });
      await jest.advanceTimersByTimeAsync(0);
      expect(line.textContent).toBe('No estimate for alpha / batch: site alpha did not answer');

      const refused = estimating(() => Promise.reject(new Error('walltime must look like H:MM')));
      await jest.advanceTimersByTimeAsync(0);
      expect(find(refused.node, '.jp-ContinuumWorkflows-estimate').textContent).toBe(
        'walltime must look like H:MM'
      );
    });

    it('is not asked in a re-run, which keeps the resources', async () => {
      const api = new FakeAPI();
      const widget = new RunForm({
        mode: 'rerun',
        path: 'work/analysis.ipynb',
        options: OPTIONS,
        parameters: PARAMETERS,
        values: initialValues(OPTIONS, PARAMETERS),
        estimate: query => api.estimate(query)
      });
      await jest.advanceTimersByTimeAsync(ESTIMATE_DELAY);
      expect(widget.node.querySelector('.jp-ContinuumWorkflows-estimate')).toBeNull();
      expect(api.estimates).toEqual([]);
    });
  });
});
