import { addSidePanel, registerContinuumCommand } from '@continuum-hub/common';
import { JupyterFrontEnd, JupyterFrontEndPlugin } from '@jupyterlab/application';
import { Dialog, ICommandPalette, Notification, showDialog } from '@jupyterlab/apputils';
import { listIcon } from '@jupyterlab/ui-components';

import { ClustersModel } from './clusters-model';
import { ClustersPanel } from './clusters-panel';
import { IClustersModel } from './tokens';

export * from './tokens';

/**
 * The command ids of this extension.
 */
export namespace CommandIDs {
  export const openPanel = 'continuum-clusters:open-panel';
  export const create = 'continuum-clusters:create';
}

const PANEL_ID = 'continuum-clusters-panel';

async function confirmStop(name: string): Promise<boolean> {
  const result = await showDialog({
    title: 'Shut down this cluster?',
    body: `Cluster ${name}: its scheduler and workers stop, and computations on it are lost.`,
    buttons: [Dialog.cancelButton(), Dialog.warnButton({ label: 'Shut down' })]
  });
  return result.button.accept;
}

/**
 * The clusters plugin: a side panel with all the user's Dask Gateway clusters.
 */
const plugin: JupyterFrontEndPlugin<IClustersModel> = {
  id: '@continuum-hub/clusters:plugin',
  description: "Lists all the user's Dask Gateway clusters, to scale, open and shut them down.",
  autoStart: true,
  provides: IClustersModel,
  optional: [ICommandPalette],
  activate: (app: JupyterFrontEnd, palette: ICommandPalette | null): IClustersModel => {
    const model = new ClustersModel();
    const panel = new ClustersPanel(model, {
      create: async () => {
        const name = await model.create();
        Notification.info(`Dask cluster ${name} is starting.`, { autoClose: 5000 });
      },
      scale: async (name, count) => {
        await model.scale(name, count);
        if (model.note) {
          Notification.warning(model.note, { autoClose: 8000 });
        }
      },
      stop: async name => {
        if (await confirmStop(name)) {
          await model.stop(name);
        }
      }
    });
    addSidePanel(
      app,
      panel,
      {
        id: PANEL_ID,
        icon: listIcon,
        rank: 910,
        command: CommandIDs.openPanel,
        label: 'Show Dask Clusters',
        caption: 'All your Dask Gateway clusters: scale, dashboard, shut down'
      },
      { palette }
    );
    registerContinuumCommand(
      app.commands,
      CommandIDs.create,
      {
        label: 'New Dask Cluster',
        execute: async () => {
          try {
            await model.create();
          } catch (error) {
            Notification.error(`Could not start a cluster: ${String(error)}`);
          }
        }
      },
      { palette }
    );
    void app.restored.then(() => model.start());
    return model;
  }
};

export default plugin;
