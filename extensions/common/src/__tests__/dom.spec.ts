import { actionButton, formatAge, formatBytes, ListPanel, listNote, tableWithHead } from '../index';

/**
 * A panel over a list the test sets.
 */
class Letters extends ListPanel {
  items: string[] | null = null;
  error: string | null = null;
  renders = 0;

  constructor() {
    super('jp-Test', 'Letters');
  }

  render(): void {
    this.renders += 1;
    this.showState(this.items, this.error, 'Asking…', 'No letters.');
  }

  act(action: Promise<void>): void {
    this.runAction(action);
  }
}

describe('panel helpers', () => {
  it('makes buttons named by their action', () => {
    const clicks: string[] = [];
    const node = actionButton('Stop', 'jp-mod-styled', 'stop', () => clicks.push('stop'));
    node.click();
    expect([node.type, node.textContent, node.dataset.action, clicks]).toEqual([
      'button',
      'Stop',
      'stop',
      ['stop']
    ]);
  });

  it.each([
    [null, '–'],
    [-1, '–'],
    [45, '45 s'],
    [725, '12 min'],
    [3 * 3600 + 300, '3 h 05 min'],
    [2 * 86400 + 4 * 3600, '2 d 4 h']
  ])('formats %p seconds as %p', (seconds, text) => {
    expect(formatAge(seconds)).toBe(text);
  });
});

describe('tables and notes', () => {
  it('makes a table with its header and an empty body', () => {
    const table = tableWithHead('t', ['A', 'B']);
    expect(Array.from(table.querySelectorAll('th')).map(th => th.textContent)).toEqual(['A', 'B']);
    expect(table.tBodies).toHaveLength(1);
  });

  it('says what stands in for a list', () => {
    expect(listNote(null, null, 'asking', 'none')).toBe('asking');
    expect(listNote(null, 'down', 'asking', 'none')).toBe('');
    expect(listNote([], null, 'asking', 'none')).toBe('none');
    expect(listNote([1], null, 'asking', 'none')).toBe('');
  });
});

describe('ListPanel', () => {
  it('shows its title, the note for the list and the errors', async () => {
    const panel = new Letters();
    expect(panel.hasClass('jp-Test-panel')).toBe(true);
    expect(panel.node.querySelector('h2')?.textContent).toBe('Letters');
    const [error, empty] = ['.jp-Test-error', '.jp-Test-empty'].map(selector => {
      const node = panel.node.querySelector<HTMLElement>(selector);
      if (node === null) {
        throw new Error(`no ${selector}`);
      }
      return node;
    });
    panel.render();
    expect([empty.textContent, error.hidden]).toEqual(['Asking…', true]);
    panel.items = [];
    panel.render();
    expect(empty.textContent).toBe('No letters.');
    panel.act(Promise.reject(new Error('refused')));
    await new Promise(resolve => setTimeout(resolve, 0));
    expect([error.textContent, error.hidden]).toEqual(['refused', false]);
    panel.error = 'down';
    panel.render();
    expect(error.textContent).toBe('down');
  });
});

describe('formatBytes', () => {
  it.each([
    [null, '–'],
    [undefined, '–'],
    [-1, '–'],
    [512, '512 B'],
    [8_800, '8.6 KiB'],
    [2 * 1024 ** 3, '2.0 GiB']
  ])('writes %p as %p', (bytes, text) => {
    expect(formatBytes(bytes)).toBe(text);
  });
});
