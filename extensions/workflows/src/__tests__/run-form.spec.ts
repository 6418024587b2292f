import { initialValues } from '../form';
import { RunForm } from '../run-form';
import { find, OPTIONS, PARAMETERS } from './fake-api';

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
});
