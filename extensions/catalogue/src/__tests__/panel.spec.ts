import { CataloguePanel } from '../panel';
import { SearchModel } from '../search-model';
import { FakeAPI } from './fake-api';

function panel(api: FakeAPI, opened: string[] = [], inserted: string[] = []): CataloguePanel {
  const model = new SearchModel(api, 0);
  const widget = new CataloguePanel(
    model,
    api,
    {
      insertCode: async code => {
        inserted.push(code);
      },
      copy: () => undefined,
      startNear: url => opened.push(url),
      hasCommand: () => false,
      execute: async () => undefined
    },
    { prefix: '/hub/', user: 'alice' }
  );
  widget.usable = api.usable;
  document.body.append(widget.node);
  return widget;
}

async function settle(): Promise<void> {
  for (let i = 0; i < 5; i++) {
    await new Promise(resolve => setTimeout(resolve, 0));
  }
}

describe('CataloguePanel', () => {
  it('labels its search box, facets and list, and shows each source’s state', async () => {
    const api = new FakeAPI();
    const widget = panel(api);
    const input = widget.node.querySelector('input[name="q"]') as HTMLInputElement;
    expect(input.closest('label')?.textContent).toContain('Search datasets');
    await widget.model.search();
    widget.results.render();
    expect(widget.node.querySelector('[role="listbox"]')?.getAttribute('aria-label')).toBe(
      'Search results'
    );
    const boxes = widget.node.querySelectorAll(
      'fieldset[data-facet="site"] input[type="checkbox"]'
    );
    expect([...boxes].map(b => b.parentElement?.textContent)).toEqual([
      ' beta (80)',
      ' alpha (40)'
    ]);
    const sources = widget.node.querySelector('.jp-ContinuumCatalogue-sources')?.textContent;
    expect(sources).toBe('demo 12 mstap unavailable: timed out after 5 s'); // two spans
    // only the rows in view are in the page
    expect(widget.node.querySelectorAll('[role="option"]').length).toBeLessThan(api.total);
    widget.dispose();
  });

  it('is used from the keyboard: arrows move, Enter opens, actions act', async () => {
    const api = new FakeAPI();
    const opened: string[] = [];
    const inserted: string[] = [];
    const widget = panel(api, opened, inserted);
    await widget.model.search();
    const list = widget.results.node;
    for (const key of ['ArrowDown', 'ArrowDown', 'Enter']) {
      list.dispatchEvent(new KeyboardEvent('keydown', { key }));
    }
    await settle();
    expect(list.getAttribute('aria-activedescendant')).toBe('jp-ContinuumCatalogue-row-1');
    expect(api.calls).toContain('entry demo:-1 ');
    const view = widget.view.node;
    (view.querySelector('[data-action="insert-code"]') as HTMLButtonElement).click();
    (view.querySelector('[data-action="start-near"]') as HTMLButtonElement).click();
    await settle();
    expect(inserted).toEqual(["fits.open('/data/beta/obs-0001.fits')"]);
    expect(opened).toEqual([
      '/hub/spawn/alice/near-beta?site=beta&data_sites=beta&datasets=demo%3A-1'
    ]);
    const access = view.querySelector('tr[data-site="beta"] td[data-field="access"]');
    expect(access?.textContent).toBe('you may use it');
    widget.dispose();
  });
});
