import { ChainForm } from '../chain-dialog';
import { ChainModel, stepName, workflowPath } from '../chain-model';
import { ISubmitRequest } from '../tokens';
import { find } from './fake-api';

function request(path: string, extra: Partial<ISubmitRequest> = {}): ISubmitRequest {
  return {
    path,
    parameters: {},
    sweep: null,
    max_parallel: null,
    resources: {
      site: 'alpha',
      partition: 'batch',
      cores: 1,
      memory_gb: 1.5,
      gpus: 0,
      walltime: '0:10'
    },
    outputs: [],
    retries: 0,
    ...extra
  };
}

/** The resources as the file holds them: whole gigabytes. */
const WRITTEN = {
  site: 'alpha',
  partition: 'batch',
  cores: 1,
  memory_gb: 2,
  gpus: 0,
  walltime: '0:10'
};

describe('ChainModel', () => {
  it('names steps after their notebooks, uniquely', () => {
    expect(stepName('work/Energy Scan.ipynb', [])).toBe('energy-scan');
    expect(stepName('work/2024_fit.ipynb', [])).toBe('fit');
    expect(stepName('x/9.ipynb', [])).toBe('step');
    expect(stepName('a/scan.ipynb', ['scan', 'scan-2'])).toBe('scan-3');
    expect(workflowPath('work/scan.ipynb', 'flow')).toBe('work/flow.yaml');
    expect(workflowPath('scan.ipynb', 'flow')).toBe('flow.yaml');
  });

  it('chains each new step after the last and writes the schema’s document', () => {
    const model = new ChainModel('energy');
    model.add(
      request('work/simulate.ipynb', {
        parameters: { n: 10 },
        sweep: { grid: { energy: [1, 2] } },
        max_parallel: 2,
        outputs: ['results/'],
        retries: 1
      })
    );
    model.add(request('work/summarize.ipynb'), undefined, 'sum');
    expect(model.steps.map(s => [s.name, s.after])).toEqual([
      ['simulate', []],
      ['sum', ['simulate']]
    ]);
    expect(model.problems()).toEqual([]);
    expect(model.toDocument()).toEqual({
      name: 'energy',
      steps: [
        {
          name: 'simulate',
          notebook: 'work/simulate.ipynb',
          parameters: { n: 10 },
          sweep: { energy: [1, 2] },
          max_parallel: 2,
          resources: WRITTEN,
          outputs: ['results/'],
          retries: 1
        },
        {
          name: 'sum',
          notebook: 'work/summarize.ipynb',
          depends_on: ['simulate'],
          resources: WRITTEN
        }
      ]
    });
  });

  it('keeps dependencies on earlier steps only when steps move or go', () => {
    const model = new ChainModel('flow');
    model.add(request('a.ipynb'));
    model.add(request('b.ipynb'));
    model.add(request('c.ipynb'), ['a', 'b']);
    model.setAfter(1, ['a', 'c']); // c is later than b: ignored
    expect(model.steps[1].after).toEqual(['a']);
    // c moves above b: "c after b" would run backwards, and is dropped
    expect(model.move(2, -1)).toEqual(['c→b']);
    expect(model.steps.map(s => [s.name, s.after])).toEqual([
      ['a', []],
      ['c', ['a']],
      ['b', ['a']]
    ]);
    expect(model.move(1, -1)).toEqual(['c→a']);
    expect(model.steps.map(s => [s.name, s.after])).toEqual([
      ['c', []],
      ['a', []],
      ['b', ['a']]
    ]);
    expect(model.move(0, -1)).toEqual([]); // already first
    model.remove(1);
    expect(model.steps.map(s => [s.name, s.after])).toEqual([
      ['c', []],
      ['b', []]
    ]);
  });

  it('refuses what the schema refuses', () => {
    const model = new ChainModel('bad name!');
    expect(model.problems()).toEqual([
      'Name the workflow: letters, digits, ".", "_" or "-".',
      'Add at least one step.'
    ]);
    model.add(request('a.ipynb'));
    expect(() => model.add(request('b.ipynb'), [], 'a')).toThrow(/unique/);
    expect(() => model.add(request('b.ipynb'), [], 'Upper')).toThrow(/lowercase/);
  });
});

describe('ChainForm', () => {
  it('shows the steps with after boxes, and moves and removes them', () => {
    const model = new ChainModel('flow');
    model.add(request('a.ipynb'));
    model.add(request('b.ipynb'));
    const form = new ChainForm(model, ['a problem']);
    expect(form.node.textContent).toContain('a problem');
    const box = find<HTMLInputElement>(form.node, 'li[data-step="b"] input[name="after.b"]');
    expect(box.value).toBe('a');
    expect(box.checked).toBe(true);
    box.checked = false;
    box.dispatchEvent(new Event('change'));
    expect(model.steps[1].after).toEqual([]);
    find<HTMLButtonElement>(form.node, 'li[data-step="b"] button[data-action="up"]').click();
    expect(model.steps.map(s => s.name)).toEqual(['b', 'a']);
    expect(form.node.querySelectorAll('li')[0].dataset.step).toBe('b');
    find<HTMLInputElement>(form.node, 'input[name="workflow-name"]').value = 'renamed';
    find<HTMLButtonElement>(form.node, 'li[data-step="a"] button[data-action="remove"]').click();
    expect(model.steps.map(s => s.name)).toEqual(['b']);
    expect(model.name).toBe('renamed');
    expect(form.getValue()).toEqual({ name: 'renamed' });
  });
});
