/**
 * The front door: every Continuum Hub capability as a card in the Launcher's *Continuum* section
 * and as an item of the *Continuum* main menu. Each extension bundles its own copy of this
 * module, so the menu is found in the menu bar by its id rather than kept in a module variable.
 */

import { ILauncher } from '@jupyterlab/launcher';
import { IMainMenu } from '@jupyterlab/mainmenu';
import { CommandRegistry } from '@lumino/commands';
import { DisposableDelegate, DisposableSet, IDisposable } from '@lumino/disposable';
import { Menu } from '@lumino/widgets';

/** The Launcher section (category) of our cards. */
export const FRONT_DOOR_CATEGORY = 'Continuum';

/**
 * The arguments our Launcher cards give their command: a label may name the panel on a card
 * (`Dask clusters`) and say what happens in a menu (`Show Dask Clusters`).
 */
export const LAUNCHER_ARGS = { isLauncher: true };

/** The id of the *Continuum* main menu. */
export const CONTINUUM_MENU_ID = 'jp-mainmenu-continuum';

/** The main menu's rank: after *Kernel* (600) and *Tabs*, before *Settings* (1000) and *Help*. */
export const CONTINUUM_MENU_RANK = 900;

/**
 * Where the front door is: the plugin's optional tokens (absent in other front ends).
 */
export interface IFrontDoor {
  /** The Launcher: one card per command in {@link FRONT_DOOR_CATEGORY}. */
  launcher?: ILauncher | null;
  /** The main menu: one item per command in the *Continuum* menu. */
  mainMenu?: IMainMenu | null;
}

/**
 * The *Continuum* main menu, created by the first extension that asks for it.
 *
 * @param mainMenu - the application's main menu
 * @param commands - the command registry the menu's items run in
 * @returns the menu (the same for every extension)
 */
export function continuumMenu(mainMenu: IMainMenu, commands: CommandRegistry): Menu {
  // the menu bar's menus: the concrete MainMenu is a MenuBar, the token's interface hides it
  const menus = (mainMenu as IMainMenu & { menus?: readonly Menu[] }).menus ?? [];
  const existing = menus.find(menu => menu.id === CONTINUUM_MENU_ID);
  if (existing) {
    return existing;
  }
  const menu = new Menu({ commands });
  menu.id = CONTINUUM_MENU_ID;
  menu.title.label = 'Continuum';
  menu.title.caption = 'Dask clusters, this session, batch runs and the data catalogue';
  mainMenu.addMenu(menu, true, { rank: CONTINUUM_MENU_RANK });
  return menu;
}

/**
 * Show a command at the front door: a Launcher card and a *Continuum* menu item, both ordered
 * by `rank` (the card's text is the command's label, its tooltip the caption).
 *
 * @param commands - the command registry holding the command
 * @param command - the command's id
 * @param rank - its place among our cards and menu items (lower first)
 * @param door - the Launcher and main menu, either may be absent
 * @returns what removes the card and the menu item again
 */
export function addToFrontDoor(
  commands: CommandRegistry,
  command: string,
  rank: number,
  door: IFrontDoor
): IDisposable {
  const added = new DisposableSet();
  if (door.launcher) {
    added.add(
      door.launcher.add({ command, args: LAUNCHER_ARGS, category: FRONT_DOOR_CATEGORY, rank })
    );
  }
  if (door.mainMenu) {
    const menu = continuumMenu(door.mainMenu, commands);
    const item = insertByRank(menu, command, rank);
    added.add(new DisposableDelegate(() => menu.removeItem(item)));
  }
  return added;
}

/** The ranks of the menu's items; a Lumino menu item has no rank of its own. */
const RANK_KEY = 'continuumRank';

function insertByRank(menu: Menu, command: string, rank: number): Menu.IItem {
  const index = menu.items.findIndex(
    item => Number((item.args as Record<string, unknown>)[RANK_KEY] ?? Infinity) > rank
  );
  const options = { command, args: { [RANK_KEY]: rank } };
  return index < 0 ? menu.addItem(options) : menu.insertItem(index, options);
}
