import {
  addSidePanel,
  clustersIcon,
  newClusterIcon,
  registerContinuumCommand
} from '@continuum-hub/common';
import { JupyterFrontEnd, JupyterFrontEndPlugin } from '@jupyterlab/application';
import { Dialog, ICommandPalette, Notification, showDialog } from '@jupyterlab/apputils';
import { ILauncher } from '@jupyterlab/launcher';
import { IMainMenu } from '@jupyterlab/mainmenu';

import { newClusterDialog } from './cluster-dialog';
import { displayName } from './cluster-form';
import { ClustersModel } from './clusters-model';
import { ClustersPanel } from './clusters-panel';
import { clusterDialogAPI } from './request';
import { IClustersModel } from './tokens';

export * from './tokens';

/**
 * The command ids of this extension.
 */
export namespace CommandIDs {
  export const openPanel = 'continuum-clusters:open-panel';
  /** *New Dask cluster*: the options dialog; args: `{site}` to preselect a site. */
  export const create = 'continuum:new-dask-cluster';
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
  optional: [ICommandPalette, ILauncher, IMainMenu],
  activate: (
    app: JupyterFrontEnd,
    palette: ICommandPalette | null,
    launcher: ILauncher | null,
    mainMenu: IMainMenu | null
  ): IClustersModel => {
    const model = new ClustersModel();
    // the dialog, then the new cluster's readable name in a notification; a failure is thrown
    const create = async (site?: string): Promise<void> => {
      const taken = (model.clusters ?? []).map(c => displayName(c.name, c.options));
      const id = await newClusterDialog(clusterDialogAPI, taken, site);
      if (id !== null) {
        await model.refresh();
        const made = model.clusters?.find(c => c.name === id);
        const name = made ? displayName(made.name, made.options) : id;
        Notification.info(`Dask cluster ${name} is starting.`, { autoClose: 5000 });
      }
    };
    const panel = new ClustersPanel(model, {
      create: () => create(),
      scale: async (name, count) => {
        await model.scale(name, count);
        if (model.note) {
          Notification.warning(model.note, { autoClose: 8000 });
        }
      },
      stop: async name => {
        const shown = model.clusters?.find(c => c.name === name);
        if (await confirmStop(shown ? displayName(name, shown.options) : name)) {
          await model.stop(name);
        }
      }
    });
    addSidePanel(
      app,
      panel,
      {
        id: PANEL_ID,
        icon: clustersIcon,
        rank: 910,
        command: CommandIDs.openPanel,
        label: 'Show Dask Clusters',
        caption: 'All your Dask Gateway clusters: scale, dashboard, shut down',
        launcherLabel: 'Dask clusters'
      },
      { palette, launcher, mainMenu, frontDoorRank: 20 }
    );
    registerContinuumCommand(
      app.commands,
      CommandIDs.create,
      {
        label: 'New Dask Cluster',
        icon: newClusterIcon,
        caption: 'Start a Dask cluster: site, partition, worker size, GPUs, estimate',
        execute: async args => {
          try {
            await create(typeof args.site === 'string' ? args.site : undefined);
          } catch (error) {
            Notification.error(`Could not start a cluster: ${String(error)}`);
          }
        }
      },
      { palette, launcher, mainMenu, frontDoorRank: 10 }
    );
    void app.restored.then(() => model.start());
    return model;
  }
};

export default plugin;
