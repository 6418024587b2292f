import { IEstimate } from '@continuum-hub/common';

import { ClusterForm } from '../cluster-dialog';
import {
  checkValues,
  connectCode,
  displayName,
  estimateQuery,
  formFields,
  generatedName,
  initialValues
} from '../cluster-form';
import { find, SPEC } from './fake-api';

describe('the cluster options as a form', () => {
  it('shows the fields it can edit, with the defaults and a preselected site', () => {
    expect(formFields(SPEC).map(f => f.field)).not.toContain('extra');
    const values = initialValues(SPEC, 'beta');
    expect(values).toMatchObject({
      site: 'beta',
      partition: 'default',
      worker_cores: '1',
      name: ''
    });
    expect(initialValues(SPEC, 'nowhere').site).toBe('alpha'); // a site not offered is ignored
  });

  it('sends typed options when the values pass the checks', () => {
    const values = { ...initialValues(SPEC), site: 'beta', partition: 'gpu', worker_gpus: '1' };
    expect(checkValues(SPEC, { ...values, name: 'my-gpus' })).toEqual({
      options: {
        site: 'beta',
        partition: 'gpu',
        worker_cores: 1,
        worker_gpus: 1,
        walltime_minutes: 60,
        adaptive_minimum: 0,
        adaptive_maximum: 0,
        idle_timeout_minutes: 30,
        name: 'my-gpus'
      }
    });
  });

  it("refuses with the gateway's own messages", () => {
    const values = {
      ...initialValues(SPEC),
      worker_cores: '17',
      worker_gpus: '1.5',
      site: 'gamma',
      idle_timeout_minutes: '0.1',
      adaptive_minimum: '3',
      adaptive_maximum: '2',
      name: 'my cluster'
    };
    expect(checkValues(SPEC, values)).toEqual({
      errors: {
        site: "'gamma' is not a valid option for site",
        worker_cores: 'worker_cores must be <= 16.000000, got 17',
        worker_gpus: "worker_gpus must be an integer, got '1.5'",
        idle_timeout_minutes: 'idle_timeout_minutes must be >= 0.250000, got 0.1',
        adaptive_minimum: 'adaptive minimum 3 is above the adaptive maximum 2',
        name:
          "name must be 1 to 40 letters, digits, '-' or '_', starting with a letter or digit, " +
          "not 'my cluster'"
      }
    });
    const long = checkValues(SPEC, { ...initialValues(SPEC), name: 'x'.repeat(41) });
    expect('errors' in long && long.errors.name).toContain('1 to 40');
  });

  it('asks the estimate for one worker, as the spawn form does', () => {
    const values = {
      ...initialValues(SPEC),
      site: 'beta',
      worker_gpus: '1',
      walltime_minutes: '90'
    };
    expect(estimateQuery(values)).toEqual({
      site: 'beta', // the default partition is the hub's to choose
      cores: '1',
      gpus: '1',
      walltime: '1:30'
    });
    expect(estimateQuery({ ...values, partition: 'gpu' }).partition).toBe('gpu');
  });

  it('makes up a free name and shows readable names and the connecting code', () => {
    expect(generatedName('beta', 'gpu', [])).toBe('beta-gpu-1');
    expect(generatedName('beta', 'gpu', ['beta-gpu-1', 'beta-gpu-3'])).toBe('beta-gpu-2');
    const id = 'a1b2c3d4e5f6a7b8c9d0e1f2a3b4c5d6';
    expect(displayName(id, { name: 'mine' })).toBe('mine');
    expect(displayName(id, {})).toBe('a1b2c3d4e5f6'); // made in code before names existed
    expect(connectCode(id)).toBe(
      `from dask_gateway import Gateway\ncluster = Gateway().connect("${id}")`
    );
  });
});

describe('ClusterForm', () => {
  const estimate: IEstimate = {
    site: 'beta',
    partition: 'gpu',
    start_time: null,
    wait_seconds: 300,
    energy_kwh_max: 0.4,
    gco2e_max: 120
  };

  it('labels every control, shows the problems and keeps the values', () => {
    const form = new ClusterForm(
      SPEC,
      initialValues(SPEC),
      { worker_cores: 'too many', service: 'Dask Gateway: no' },
      []
    );
    const cores = find<HTMLInputElement>(form.node, 'input[name="worker_cores"]');
    expect(form.node.querySelector(`label[for="${cores.id}"]`)?.textContent).toBe(
      'Cores per worker'
    );
    expect(cores.getAttribute('aria-invalid')).toBe('true');
    expect(form.node.querySelector('.jp-ContinuumClusterForm-refusal')?.textContent).toBe(
      'Dask Gateway: no'
    );
    cores.value = '2';
    expect(form.getValue().worker_cores).toBe('2');
    form.dispose();
  });

  it('suggests the generated name and shows the live estimate line', async () => {
    jest.useFakeTimers();
    const asked: Record<string, string>[] = [];
    const form = new ClusterForm(
      SPEC,
      { ...initialValues(SPEC), site: 'beta', partition: 'gpu' },
      {},
      ['beta-gpu-1'],
      async query => {
        asked.push(query);
        return estimate;
      }
    );
    const name = find<HTMLInputElement>(form.node, 'input[name="name"]');
    expect(name.placeholder).toBe('beta-gpu-2');
    const gpus = find<HTMLInputElement>(form.node, 'input[name="worker_gpus"]');
    gpus.value = '1';
    gpus.dispatchEvent(new Event('input', { bubbles: true }));
    await jest.runAllTimersAsync();
    expect(asked).toHaveLength(1); // quiet typing: one question
    expect(asked[0]).toMatchObject({ site: 'beta', partition: 'gpu', gpus: '1' });
    expect(form.node.querySelector('.jp-ContinuumClusterForm-estimate')?.textContent).toBe(
      'Expected start on beta / gpu: in about 5 min · at most 0.4 kWh, 120 g CO2e if used in full'
    );
    form.dispose();
    jest.useRealTimers();
  });
});
