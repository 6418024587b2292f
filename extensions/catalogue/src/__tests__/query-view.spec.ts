import { EntryView, IEntryActions } from '../entry-view';
import { FORM_FIELDS, pyvoCode } from '../query-form';
import { QueryModel } from '../query-model';
import { answerSummary, QueryView, SHOWN_ROWS } from '../query-view';
import { IQueryAnswer } from '../tokens';
import { FakeAPI, tableEntry } from './fake-api';

async function settle(): Promise<void> {
  for (let i = 0; i < 5; i++) {
    await new Promise(resolve => setTimeout(resolve, 0));
  }
}

function type(node: HTMLElement, name: string, value: string): void {
  const input = node.querySelector(`[name="${name}"]`) as HTMLInputElement;
  input.value = value;
  input.dispatchEvent(new Event('input'));
}

function answer(rows: number, truncated: boolean): IQueryAnswer {
  return {
    columns: [
      { name: 'obs_id', unit: '', datatype: 'char' },
      { name: 'ra', unit: 'deg', datatype: 'double' }
    ],
    rows: Array.from({ length: rows }, (_, i) => [`obs-${i}`, i / 2]),
    truncated,
    message: '',
    adql: 'SELECT TOP 101 * FROM radio.observations'
  };
}

describe('QueryView', () => {
  it('shows the table’s fields, the service’s problems by field, and the answer', async () => {
    const api = new FakeAPI();
    const inserted: string[] = [];
    const view = new QueryView(new QueryModel(api, tableEntry()), code => inserted.push(code));
    const node = view.node;
    const shown = [...node.querySelectorAll<HTMLElement>('.jp-ContinuumCatalogue-queryForm label')]
      .filter(label => !label.hidden)
      .map(label => label.dataset.field);
    expect(shown).toEqual([...FORM_FIELDS]);
    expect(node.querySelector('label[data-field="ra"]')?.textContent).toContain('RA (degrees)');
    type(node, 'ra', '10');
    node.dispatchEvent(new Event('submit'));
    await settle();
    const problem = node.querySelector('[data-problem="dec"]') as HTMLElement;
    expect([problem.hidden, problem.textContent]).toEqual([
      false,
      'a cone needs ra, dec and radius_deg (degrees)'
    ]);
    expect(node.querySelector('[name="dec"]')?.getAttribute('aria-invalid')).toBe('true');
    expect(api.sourceQueries).toEqual([]);
    type(node, 'dec', '20');
    type(node, 'radius_deg', '1.5');
    (node.querySelector('[data-action="run-query"]') as HTMLButtonElement).click();
    await settle();
    expect(api.sourceQueries[0][1]).toEqual({
      table: 'radio.observations',
      ra: 10,
      dec: 20,
      radius_deg: 1.5,
      maxrec: 100
    });
    expect(problem.hidden).toBe(true);
    const table = node.querySelector('table[aria-label="Query result"]') as HTMLTableElement;
    expect(
      [...(table.tHead as HTMLTableSectionElement).rows[0].cells].map(c => c.textContent)
    ).toEqual(['obs_id', 'ra [deg]']);
    expect(table.tBodies[0].rows[1].textContent).toBe('obs-211.25');
    expect(node.querySelector('[role="status"]')?.textContent).toBe('2 rows');
    (node.querySelector('[data-action="insert-query-code"]') as HTMLButtonElement).click();
    expect(inserted).toEqual([
      pyvoCode('http://tap.example.org/tap', 'SELECT TOP 101 * FROM radio.observations', 100)
    ]);
    view.dispose();
  });

  it('runs raw ADQL and shows the service’s refusal as it is', async () => {
    const api = new FakeAPI();
    const view = new QueryView(new QueryModel(api, tableEntry()), () => undefined);
    const node = view.node;
    const adql = node.querySelector('[name="adql"]') as HTMLTextAreaElement;
    expect(adql.closest('label')?.hidden).toBe(true);
    const mode = node.querySelector('input[value="adql"]') as HTMLInputElement;
    mode.checked = true;
    mode.dispatchEvent(new Event('change'));
    expect(adql.closest('label')?.hidden).toBe(false);
    expect(adql.value).toBe('SELECT TOP 100 * FROM radio.observations');
    api.queryAnswer = new Error('DROP is not allowed: queries may only read');
    type(node, 'adql', 'DROP TABLE radio.observations');
    node.dispatchEvent(new Event('submit'));
    await settle();
    expect(api.sourceQueries).toEqual([
      ['radio-tap', { adql: 'DROP TABLE radio.observations', maxrec: 100 }]
    ]);
    expect(node.querySelector('[role="alert"]')?.textContent).toBe(
      'DROP is not allowed: queries may only read'
    );
    expect(node.querySelector('table')).toBeNull();
    view.dispose();
  });

  it('bounds a long answer and says when the service cut it', async () => {
    const api = new FakeAPI();
    api.queryAnswer = answer(SHOWN_ROWS + 30, true);
    const view = new QueryView(new QueryModel(api, tableEntry()), () => undefined);
    await view.model.run();
    expect(view.node.querySelectorAll('tbody tr')).toHaveLength(SHOWN_ROWS);
    expect(view.node.querySelector('[role="status"]')?.textContent).toBe(
      `${SHOWN_ROWS + 30} rows · truncated at 100 rows: narrow the query or ask for more · ` +
        `the first ${SHOWN_ROWS} shown`
    );
    expect(answerSummary(answer(1, false), 100)).toBe('1 row');
    view.dispose();
  });
});

describe('EntryView', () => {
  function actions(executed: [string, unknown][], has: string[]): IEntryActions {
    return {
      insertCode: async () => undefined,
      copy: () => undefined,
      startNear: () => undefined,
      hasCommand: id => has.includes(id),
      execute: async (id, args) => {
        executed.push([id, args]);
      }
    };
  }

  it('shows the query form for a TAP table, none for a file', async () => {
    const api = new FakeAPI();
    api.entries['radio-tap:radio.observations'] = tableEntry();
    const view = new EntryView(api, actions([], []), () => api.usable, {
      prefix: '/hub/',
      user: 'alice'
    });
    await view.open('radio-tap:radio.observations');
    expect(view.node.querySelector('form[aria-label="Query this table"]')).not.toBeNull();
    expect(view.node.querySelector('table[aria-label="Replicas"]')).toBeNull();
    await view.open('demo:beta/radio/obs-0001.fits');
    expect(view.query).toBeNull();
    expect(view.node.querySelector('form')).toBeNull();
    view.dispose();
  });

  it('offers the Dask and batch-run dialogs at the data’s site when their commands exist', async () => {
    const api = new FakeAPI();
    const executed: [string, unknown][] = [];
    const both = ['continuum:new-dask-cluster', 'continuum-workflows:run-batch'];
    const view = new EntryView(api, actions(executed, both), () => api.usable, {
      prefix: '/hub/',
      user: 'alice'
    });
    await view.open('demo:beta/radio/obs-0001.fits');
    const dask = view.node.querySelector('[data-action="near-dask"]') as HTMLButtonElement;
    const batch = view.node.querySelector('[data-action="near-batch"]') as HTMLButtonElement;
    expect([dask.textContent, batch.textContent]).toEqual([
      'New Dask cluster here',
      'Run a notebook here as a batch job'
    ]);
    dask.click();
    batch.click();
    await settle();
    expect(executed).toEqual([
      ['continuum:new-dask-cluster', { site: 'beta' }],
      ['continuum-workflows:run-batch', { site: 'beta' }]
    ]);
    view.dispose();

    // without the extensions' commands: only the spawn page
    const alone = new EntryView(api, actions(executed, []), () => api.usable, {
      prefix: '/hub/',
      user: 'alice'
    });
    await alone.open('demo:beta/radio/obs-0001.fits');
    expect(alone.node.querySelector('[data-action="near-dask"]')).toBeNull();
    expect(alone.node.querySelector('[data-action="start-near"]')).not.toBeNull();
    // no site the user may use: the buttons do not act
    const nowhere = new EntryView(
      api,
      actions(executed, both),
      () => ({ sites: [], known: true }),
      {
        prefix: '/hub/',
        user: 'alice'
      }
    );
    await nowhere.open('demo:beta/radio/obs-0001.fits');
    expect(
      (nowhere.node.querySelector('[data-action="near-dask"]') as HTMLButtonElement).disabled
    ).toBe(true);
    alone.dispose();
    nowhere.dispose();
  });
});
