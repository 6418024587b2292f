import { JupyterFrontEnd } from '@jupyterlab/application';
import { LabIcon } from '@jupyterlab/ui-components';
import { IDisposable } from '@lumino/disposable';
import { Widget } from '@lumino/widgets';

import { ICommandPlaces, registerContinuumCommand } from './commands';

/**
 * A Continuum Hub side panel: where it sits and the command that shows it.
 */
export interface ISidePanelOptions {
  /** The panel's id in the shell and the page (`continuum-<name>-panel`). */
  id: string;
  /** Its tab's icon in the right side bar. */
  icon: LabIcon;
  /** Its tab's place in the right side bar (ours are ranked from 900). */
  rank: number;
  /** The id of the command that shows it (`continuum-<name>:open-panel`). */
  command: string;
  /** The command's label. */
  label: string;
  /** The command's caption: the tooltip of the tab, the Launcher card and the menu item. */
  caption?: string;
  /** The Launcher card's text (the command's label elsewhere); the label when undefined. */
  launcherLabel?: string;
}

/**
 * Put a panel in the right side bar and add the command that shows it.
 *
 * @param app - the application (its shell and command registry)
 * @param panel - the panel
 * @param options - where it sits and its command
 * @param places - where the command appears (with `frontDoorRank`: also on the Launcher and
 *   in the *Continuum* menu)
 * @returns what removes the command and its entries again (the panel stays)
 */
export function addSidePanel(
  app: Pick<JupyterFrontEnd, 'commands' | 'shell'>,
  panel: Widget,
  options: ISidePanelOptions,
  places: ICommandPlaces = {}
): IDisposable {
  panel.id = options.id;
  panel.title.icon = options.icon;
  panel.title.caption = panel.title.caption || options.caption || options.label;
  app.shell.add(panel, 'right', { rank: options.rank });
  return registerContinuumCommand(
    app.commands,
    options.command,
    {
      // our Launcher cards pass `isLauncher`: a card names the panel, the menu says what happens
      label: args => (args.isLauncher ? (options.launcherLabel ?? options.label) : options.label),
      caption: options.caption,
      icon: options.icon,
      execute: () => app.shell.activateById(options.id)
    },
    places
  );
}
