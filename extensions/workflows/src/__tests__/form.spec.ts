import {
  IFormValues,
  initialValues,
  siteArgument,
  validateForm,
  validateParameters,
  walltimeMinutes
} from '../form';
import { OPTIONS, PARAMETERS } from './fake-api';

function values(overrides: Partial<IFormValues> = {}): IFormValues {
  return { ...initialValues(OPTIONS, PARAMETERS), ...overrides };
}

describe('initialValues', () => {
  it('starts on the first partition with the parameters’ defaults', () => {
    const first = values();
    expect(first.site).toBe('alpha');
    expect(first.partition).toBe('batch');
    expect(first.walltime).toBe('1:00');
    expect(first.environment).toBe('default');
    expect(first.parameters).toEqual({
      n: '3',
      rate: '0.5',
      label: 'run A',
      flags: '[1,2]',
      verbose: 'false',
      shape: ''
    });
  });
});

describe('a site preselected (Start near the data)', () => {
  it('takes the command’s site argument, text only', () => {
    expect(siteArgument({ path: 'a.ipynb', site: 'beta' })).toBe('beta');
    expect(siteArgument({ path: 'a.ipynb' })).toBe('');
    expect(siteArgument({ site: 3 })).toBe('');
  });

  it('starts on that site with its default partition, else on the first site', () => {
    const near = initialValues(OPTIONS, PARAMETERS, 'beta');
    expect([near.site, near.partition]).toEqual(['beta', OPTIONS.sites[1].partitions[0].name]);
    expect(initialValues(OPTIONS, PARAMETERS, 'gamma').site).toBe('alpha');
    expect(initialValues(OPTIONS, PARAMETERS, '').site).toBe('alpha');
  });
});

describe('the service’s defaults and limits', () => {
  it('starts on the partition and environment marked default, and caps retries', () => {
    const beta = OPTIONS.sites[1];
    const options = {
      sites: [
        {
          ...beta,
          partitions: [
            { ...beta.partitions[0], name: 'short' },
            { ...beta.partitions[0], default: true }
          ],
          environments: [{ name: 'plain' }, { name: 'cuda', label: 'CUDA', default: true }]
        }
      ],
      limits: { max_retries: 2 }
    };
    const first = initialValues(options, []);
    expect([first.site, first.partition, first.environment, first.walltime]).toEqual([
      'beta',
      'gpu',
      'cuda',
      '60'
    ]);
    const checked = validateForm('a.ipynb', { ...first, retries: '3' }, [], options);
    expect('errors' in checked && checked.errors).toEqual({
      retries: 'Retries must be from 0 to 2'
    });
  });
});

describe('walltimeMinutes', () => {
  it.each([
    ['1:00', 60],
    ['4:00:00', 240],
    ['1-00:00:00', 1440],
    ['90', 90],
    [120, 120],
    ['soon', null],
    ['0', null]
  ] as const)('%j → %j', (text, minutes) => {
    expect(walltimeMinutes(text)).toBe(minutes);
  });
});

describe('validateForm', () => {
  it('builds a sweep request with typed parameters', () => {
    const checked = validateForm(
      'work/analysis.ipynb',
      values({
        sweep: { n: '', rate: '0.1, 0.2, 0.4', label: '', flags: '', verbose: '', shape: '' },
        max_parallel: '2',
        outputs: 'results/, summary.json',
        retries: '1',
        cores: '2',
        memory_gb: '4',
        walltime: '2:00'
      }),
      PARAMETERS,
      OPTIONS
    );
    expect(checked.members).toBe(3);
    expect('request' in checked && checked.request).toEqual({
      path: 'work/analysis.ipynb',
      parameters: { n: 3, label: 'run A', flags: [1, 2], verbose: false },
      sweep: { grid: { rate: [0.1, 0.2, 0.4] } },
      max_parallel: 2,
      resources: {
        site: 'alpha',
        partition: 'batch',
        cores: 2,
        memory_gb: 4,
        gpus: 0,
        walltime: '2:00',
        environment: 'default'
      },
      outputs: ['results/', 'summary.json'],
      retries: 1
    });
  });

  it('says what is wrong, field by field', () => {
    const checked = validateForm(
      'a.ipynb',
      values({
        cores: '5',
        gpus: '1',
        memory_gb: '0',
        walltime: '5:00',
        parameters: {
          n: 'three',
          rate: '0.5',
          label: '',
          flags: '{}',
          verbose: 'maybe',
          shape: ''
        },
        sweep: { n: '1, 2, 3', rate: '1, 2, 3, 4', label: '', flags: '', verbose: '', shape: '' },
        outputs: '../etc',
        retries: '9',
        max_parallel: '0'
      }),
      PARAMETERS,
      OPTIONS
    );
    expect('errors' in checked && checked.errors).toEqual({
      cores: 'Cores must be from 1 to 4',
      gpus: 'GPUs must be from 0 to 0',
      memory_gb: 'Memory must be more than 0 and at most 8 GB',
      walltime: 'At most 4:00:00 on this partition',
      'parameters.flags': '"{}" is not a JSON list',
      'parameters.verbose': '"maybe" is not true or false',
      members: '12 members: a sweep has at most 10',
      max_parallel: 'At once must be from 1 to 12',
      retries: 'Retries must be from 0 to 5',
      outputs: '../etc: outputs are paths inside the run\'s folder (no "/" first, no "..")'
    });
    expect(checked.members).toBe(12);
  });

  it('refuses a partition the user may not use', () => {
    const checked = validateForm('a.ipynb', values({ site: 'gamma' }), PARAMETERS, OPTIONS);
    expect('errors' in checked && checked.errors.partition).toContain('Choose a site');
  });

  it('keeps the notebook’s default when a value without literal is left empty', () => {
    const checked = validateForm('a.ipynb', values(), PARAMETERS, OPTIONS);
    expect('request' in checked && Object.keys(checked.request.parameters)).not.toContain('shape');
    expect('request' in checked && checked.request.sweep).toBeNull();
  });
});

describe('validateParameters', () => {
  it('types a re-run’s parameters or says what is wrong', () => {
    const known = PARAMETERS.slice(0, 2);
    expect(validateParameters({ n: '9', rate: '0.1' }, known)).toEqual({
      parameters: { n: 9, rate: 0.1 }
    });
    expect(validateParameters({ n: 'x', rate: '0.1' }, known)).toEqual({
      errors: { 'parameters.n': '"x" is not a whole number' }
    });
  });
});
