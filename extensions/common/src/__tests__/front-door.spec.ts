import { ILauncher, LauncherModel } from '@jupyterlab/launcher';
import { MainMenu } from '@jupyterlab/mainmenu';
import { CommandRegistry } from '@lumino/commands';
import { Menu } from '@lumino/widgets';

import { registerContinuumCommand } from '../commands';
import {
  addToFrontDoor,
  CONTINUUM_MENU_ID,
  continuumMenu,
  FRONT_DOOR_CATEGORY,
  LAUNCHER_ARGS
} from '../front-door';
import { catalogueIcon, clustersIcon, sessionIcon } from '../icons';

describe('the front door', () => {
  let commands: CommandRegistry;
  let mainMenu: MainMenu;
  let launcher: LauncherModel;

  beforeEach(() => {
    commands = new CommandRegistry();
    mainMenu = new MainMenu(commands);
    launcher = new LauncherModel();
    for (const id of ['a:one', 'b:two', 'c:three']) {
      commands.addCommand(id, { label: id, execute: () => undefined });
    }
  });

  afterEach(() => mainMenu.dispose());

  const ours = (): ILauncher.IItemOptions[] =>
    Array.from(launcher.items()).filter(item => item.category === FRONT_DOOR_CATEGORY);

  it('shares one Continuum menu between extensions', () => {
    const first = continuumMenu(mainMenu, commands);
    // a second extension bundles its own copy of the module: the menu is found in the bar
    const second = continuumMenu(mainMenu, commands);
    expect(second).toBe(first);
    expect(first.id).toBe(CONTINUUM_MENU_ID);
    expect(first.title.label).toBe('Continuum');
    expect(mainMenu.menus.filter((menu: Menu) => menu.id === CONTINUUM_MENU_ID)).toHaveLength(1);
  });

  it('adds a Launcher card and a menu item per command, in rank order', () => {
    addToFrontDoor(commands, 'c:three', 30, { launcher, mainMenu });
    addToFrontDoor(commands, 'a:one', 10, { launcher, mainMenu });
    addToFrontDoor(commands, 'b:two', 20, { launcher, mainMenu });
    const cards = ours();
    expect(cards.map(card => [card.command, card.rank])).toEqual([
      ['c:three', 30],
      ['a:one', 10],
      ['b:two', 20]
    ]);
    expect(cards[0].args).toEqual(LAUNCHER_ARGS);
    const menu = continuumMenu(mainMenu, commands);
    expect(menu.items.map(item => item.command)).toEqual(['a:one', 'b:two', 'c:three']);
  });

  it('removes the card and the menu item when disposed', () => {
    const added = addToFrontDoor(commands, 'a:one', 10, { launcher, mainMenu });
    addToFrontDoor(commands, 'b:two', 20, { launcher, mainMenu });
    added.dispose();
    expect(ours().map(card => card.command)).toEqual(['b:two']);
    expect(continuumMenu(mainMenu, commands).items.map(item => item.command)).toEqual(['b:two']);
  });

  it('works without a Launcher or a main menu (other front ends)', () => {
    expect(() => addToFrontDoor(commands, 'a:one', 10, {}).dispose()).not.toThrow();
    expect(mainMenu.menus.some((menu: Menu) => menu.id === CONTINUUM_MENU_ID)).toBe(false);
  });

  it('is reached through registerContinuumCommand with a front-door rank', () => {
    registerContinuumCommand(
      commands,
      'd:four',
      { label: 'Four', execute: () => undefined },
      { launcher, mainMenu, frontDoorRank: 5 }
    );
    registerContinuumCommand(
      commands,
      'e:five',
      { label: 'Five', execute: () => undefined },
      {
        launcher,
        mainMenu
      }
    );
    expect(ours().map(card => card.command)).toEqual(['d:four']);
    expect(continuumMenu(mainMenu, commands).items.map(item => item.command)).toEqual(['d:four']);
  });

  it('has our own icons, coloured by the theme', () => {
    for (const icon of [clustersIcon, sessionIcon, catalogueIcon]) {
      expect(icon.name).toMatch(/^continuum-hub:/);
      expect(icon.svgstr).toContain('class="jp-icon3"');
    }
  });
});
