import { ICommandPalette } from '@jupyterlab/apputils';
import { CommandRegistry } from '@lumino/commands';
import { DisposableDelegate } from '@lumino/disposable';
import { CommandPalette } from '@lumino/widgets';

import { PALETTE_CATEGORY, registerContinuumCommand } from '../commands';

/**
 * The palette JupyterLab provides (apputils-extension): Lumino's, its items removable.
 */
function paletteOf(palette: CommandPalette): ICommandPalette {
  return {
    placeholder: '',
    activate: () => undefined,
    addItem: options => {
      const item = palette.addItem(options);
      return new DisposableDelegate(() => palette.removeItem(item));
    }
  };
}

describe('registerContinuumCommand', () => {
  let commands: CommandRegistry;
  let lumino: CommandPalette;

  beforeEach(() => {
    commands = new CommandRegistry();
    lumino = new CommandPalette({ commands });
  });

  afterEach(() => lumino.dispose());

  it('adds the command and lists it in the palette under Continuum Hub', async () => {
    let runs = 0;
    registerContinuumCommand(
      commands,
      'continuum-test:run',
      { label: 'Run the Test', execute: () => ++runs },
      { palette: paletteOf(lumino) }
    );
    expect(commands.label('continuum-test:run')).toBe('Run the Test');
    await commands.execute('continuum-test:run');
    expect(runs).toBe(1);
    expect(lumino.items.map(item => [item.command, item.category])).toEqual([
      ['continuum-test:run', PALETTE_CATEGORY]
    ]);
    expect(PALETTE_CATEGORY).toBe('Continuum Hub');
  });

  it.each([
    ['no places', undefined],
    ['no palette', {}],
    ['a null palette (optional token absent)', { palette: null }]
  ])('only adds the command given %s', (_, places) => {
    registerContinuumCommand(commands, 'continuum-test:run', { execute: () => undefined }, places);
    expect(commands.hasCommand('continuum-test:run')).toBe(true);
    expect(lumino.items).toEqual([]);
  });

  it('removes the command and its palette entry when disposed', () => {
    const registered = registerContinuumCommand(
      commands,
      'continuum-test:run',
      { execute: () => undefined },
      { palette: paletteOf(lumino) }
    );
    registered.dispose();
    expect(registered.isDisposed).toBe(true);
    expect(commands.hasCommand('continuum-test:run')).toBe(false);
    expect(lumino.items).toEqual([]);
  });
});
