import { addSidePanel, usageIcon } from '@continuum-hub/common';
import { JupyterFrontEnd, JupyterFrontEndPlugin } from '@jupyterlab/application';
import { ICommandPalette } from '@jupyterlab/apputils';
import { ILauncher } from '@jupyterlab/launcher';
import { IMainMenu } from '@jupyterlab/mainmenu';

import { csvUrl } from './request';
import { UsageModel } from './usage-model';
import { UsagePanel } from './usage-panel';

export * from './tokens';

/**
 * The command ids of this extension.
 */
export namespace CommandIDs {
  export const openPanel = 'continuum-usage:open-panel';
}

const PANEL_ID = 'continuum-usage-panel';

/**
 * The usage plugin: the *Usage* side panel, on the Launcher and in the *Continuum* menu.
 */
const plugin: JupyterFrontEndPlugin<void> = {
  id: '@continuum-hub/usage:plugin',
  description: "Shows this month's usage: core-hours, GPU-hours, kWh, CO2e and budgets left.",
  autoStart: true,
  optional: [ICommandPalette, ILauncher, IMainMenu],
  activate: (
    app: JupyterFrontEnd,
    palette: ICommandPalette | null,
    launcher: ILauncher | null,
    mainMenu: IMainMenu | null
  ): void => {
    const model = new UsageModel();
    const panel = new UsagePanel(model, csvUrl());
    addSidePanel(
      app,
      panel,
      {
        id: PANEL_ID,
        icon: usageIcon,
        rank: 940,
        command: CommandIDs.openPanel,
        label: 'Show Usage',
        caption: 'Your usage this month: core-hours, GPU-hours, kWh, CO2e and budgets left',
        launcherLabel: 'Usage'
      },
      { palette, launcher, mainMenu, frontDoorRank: 60 }
    );
  }
};

export default plugin;
