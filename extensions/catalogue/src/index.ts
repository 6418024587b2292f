import { addSidePanel, catalogueIcon, registerContinuumCommand } from '@continuum-hub/common';
import { JupyterFrontEnd, JupyterFrontEndPlugin } from '@jupyterlab/application';
import { Clipboard, ICommandPalette, Notification } from '@jupyterlab/apputils';
import { PageConfig } from '@jupyterlab/coreutils';
import { ILauncher } from '@jupyterlab/launcher';
import { IMainMenu } from '@jupyterlab/mainmenu';
import { INotebookTracker, NotebookActions, NotebookPanel } from '@jupyterlab/notebook';
import { searchIcon } from '@jupyterlab/ui-components';

import { IEntryActions } from './entry-view';
import { CataloguePanel } from './panel';
import { catalogueAPI } from './request';
import { SearchModel } from './search-model';

export * from './tokens';

/**
 * The command ids of this extension.
 */
export namespace CommandIDs {
  export const openPanel = 'continuum-catalogue:open-panel';
  export const search = 'continuum-catalogue:search';
}

const PANEL_ID = 'continuum-catalogue-panel';

/**
 * Put `code` into a new cell below the active cell of the current notebook; with no notebook
 * open, into the first cell of a new one (the default kernel, no kernel dialog).
 */
async function insertCode(
  app: JupyterFrontEnd,
  notebooks: INotebookTracker | null,
  code: string
): Promise<void> {
  let panel: NotebookPanel | null = notebooks?.currentWidget ?? null;
  let fresh = false;
  if (!panel) {
    const kernelName = app.serviceManager.kernelspecs.specs?.default;
    panel = (await app.commands.execute('notebook:create-new', {
      kernelName
    })) as NotebookPanel;
    await panel.context.ready;
    fresh = true;
  }
  const notebook = panel.content;
  const empty = fresh && notebook.activeCell?.model.sharedModel.getSource() === '';
  if (!empty) {
    NotebookActions.insertBelow(notebook);
  }
  notebook.activeCell?.model.sharedModel.setSource(code);
  app.shell.activateById(panel.id);
}

/**
 * The catalogue plugin: the *Catalogue* side panel and its commands.
 */
const plugin: JupyterFrontEndPlugin<void> = {
  id: '@continuum-hub/catalogue:plugin',
  description:
    'Searches the hub’s catalogues (datasets, tables, software) and opens, copies, replicates or starts near what it finds.',
  autoStart: true,
  optional: [ICommandPalette, INotebookTracker, ILauncher, IMainMenu],
  activate: (
    app: JupyterFrontEnd,
    palette: ICommandPalette | null,
    notebooks: INotebookTracker | null,
    launcher: ILauncher | null,
    mainMenu: IMainMenu | null
  ): void => {
    const model = new SearchModel(catalogueAPI);
    const actions: IEntryActions = {
      insertCode: code => insertCode(app, notebooks, code),
      copy: text => {
        Clipboard.copyToSystem(text);
        Notification.info(`Copied ${text}`, { autoClose: 3000 });
      },
      startNear: url => {
        window.open(url, '_blank', 'noopener');
      },
      hasCommand: id => app.commands.hasCommand(id),
      execute: async (id, args) => {
        await app.commands.execute(id, args);
      }
    };
    const hub = {
      prefix: PageConfig.getOption('hubPrefix') || '/hub/',
      user: PageConfig.getOption('hubUser')
    };
    const panel = new CataloguePanel(model, catalogueAPI, actions, hub);
    addSidePanel(
      app,
      panel,
      {
        id: PANEL_ID,
        icon: catalogueIcon,
        rank: 930,
        command: CommandIDs.openPanel,
        label: 'Show Catalogue',
        caption: 'Search datasets, tables and software; insert the code that opens them',
        launcherLabel: 'Catalogue'
      },
      { palette, launcher, mainMenu, frontDoorRank: 50 }
    );
    registerContinuumCommand(
      app.commands,
      CommandIDs.search,
      {
        label: 'Search Catalogues…',
        caption: 'Open the Catalogue panel with the cursor in its search box',
        icon: searchIcon,
        execute: () => {
          app.shell.activateById(PANEL_ID);
          panel.focusSearch();
        }
      },
      { palette }
    );
    void app.restored.then(async () => {
      try {
        panel.usable = await catalogueAPI.sites();
      } catch {
        panel.usable = { sites: [], known: false };
      }
    });
  }
};

export default plugin;
