import { ICommandPalette } from '@jupyterlab/apputils';
import { CommandRegistry } from '@lumino/commands';
import { DisposableSet, IDisposable } from '@lumino/disposable';

import { addToFrontDoor, IFrontDoor } from './front-door';

/**
 * The command palette's category of every Continuum Hub command.
 */
export const PALETTE_CATEGORY = 'Continuum Hub';

/**
 * Where a Continuum Hub command appears besides the command registry; each place is optional
 * (the plugin's optional tokens: absent in other front ends).
 */
export interface ICommandPlaces extends IFrontDoor {
  /** The command palette: the command is listed under {@link PALETTE_CATEGORY}. */
  palette?: ICommandPalette | null;
  /**
   * The command's place at the front door (Launcher card and *Continuum* menu item, lower
   * first); the command stays off the front door when undefined.
   */
  frontDoorRank?: number;
}

/**
 * Add a command and show it in the places Continuum Hub commands appear.
 *
 * @param commands - the application's command registry
 * @param id - the command's id (`continuum-<panel>:<action>`)
 * @param options - the command's label, caption, `execute`, …
 * @param places - where the command appears
 * @returns what removes the command and its entries again
 */
export function registerContinuumCommand(
  commands: CommandRegistry,
  id: string,
  options: CommandRegistry.ICommandOptions,
  places: ICommandPlaces = {}
): IDisposable {
  const registered = new DisposableSet();
  registered.add(commands.addCommand(id, options));
  if (places.palette) {
    registered.add(places.palette.addItem({ command: id, category: PALETTE_CATEGORY }));
  }
  if (places.frontDoorRank !== undefined) {
    registered.add(addToFrontDoor(commands, id, places.frontDoorRank, places));
  }
  return registered;
}
